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
# # Chapter 7. Reproducing Table 1, and going past it
#
# The write-up this course is built on (Chau Yu Hei, HKUST) ends with one table: for n = 5 ... 50
# bits, how many iterations (batches of 16 parallel episodes) goal-conditioned DQN needed to
# solve bit flipping, with and without Hindsight Experience Replay (HER), with its generic UVFA
# network and with its handcrafted architecture HAR. Some cells say "fails"; some were never run.
# This chapter reruns that table, cell by cell, with the settings of the write-up's own code, and
# asks what agrees, what does not, and why; then it asks what this course's settings change.
# Terms you may have forgotten are in the [glossary](glossary.md).
#
# **Learning objectives.** After this chapter you can
# 1. read a reproduction against the original cell by cell, comparing the same quantity on both
#    sides: the same moment of a run, under the same rule for "solved";
# 2. explain why one run per cell cannot separate luck from learning, and what several seeds show;
# 3. say how much faster this course's settings are, per iteration, per gradient step and per
#    second, and which settings make the difference;
# 4. check stored results yourself, by rerunning a cell from its stored configuration.
#
# **Study time.** About 45 minutes of reading. Running the notebook takes about a minute and a
# half on a laptop CPU.
#
# The grids behind the tables cost days of CPU, so their runs are *stored with the course* in
# `results/`, and this notebook reads them. Every number about them, with the command that made
# each one, is in the lab notebook [`results/README.md`](../results/README.md). The studies past
# n = 50 (HAR at n = 1024, a generic network at n = 50 and 100) are in the appendix,
# [chapter 7b](07b_beyond_table1.ipynb).

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
from statistics import median

from IPython.display import Markdown, display

from bitflip_lib import default_device, quick_mode
from bitflip_lib.config import make_config
from bitflip_lib.lab.runs import load_runs, run_name
from bitflip_lib.lab.table1 import (
    TABLE_PRESETS,
    WRITEUP_CELLS,
    comparison,
    load_grid,
    missing_runs,
    render_table,
    table_cells,
    writeup_iterations,
)
from bitflip_lib.release import results_dir
from bitflip_lib.trainer import train
from bitflip_lib.ui.plots import new_figure, plot_iterations_vs_n, plot_metric

QUICK = quick_mode()
print("QUICK mode (small budgets)" if QUICK else "FULL mode")
default_device(announce=True)

RESULTS = results_dir()
grid = {preset: load_grid(RESULTS, preset) for preset in TABLE_PRESETS}
cells = {preset: table_cells(runs) for preset, runs in grid.items()}
for preset, runs in grid.items():
    print(f"{preset:10s}: {len(runs):3d} stored runs in {len(cells[preset])} cells")
assert not missing_runs(RESULTS), "runs are missing: results/README.md has the commands"

# %% [markdown]
# ## 1. What "reproducing" means here
#
# Every cell of a grid is one call of `train` per seed: one configuration, a budget of 3000
# iterations. A finished run is written to its own JSON file, named after its configuration
# (`writeup_n20_har_writeup30_s0.json`), so an interrupted sweep loses nothing and a rerun skips
# what is stored. The library reads such a file back as a `StoredRun`: its configuration, when it
# was solved, its best success and its learning curve.
#
# ```bash
# bitflip sweep --preset writeup --arch har --her preset none --n 20 30 40 50 --seeds 0 \
#               --out results/writeup
# bitflip table --results results/writeup
# ```
#
# Three grids are stored, each with its own preset:
#
# * **`writeup`**: the settings of the code that printed the write-up's numbers (its public
#   repository): gamma 0.9, Adam (AMSGrad) with lr 1e-3, Polyak 0.01 after each of 5 gradient
#   steps per iteration, batches of 2048 transitions drawn without replacement, HAR's phi
#   2-128-128-1 with GELU fed the raw distance, and its HER variant `writeup30`: 30% of the
#   episodes get one achieved state as goal, relabelled from the start up to the step that first
#   reaches it (chapter 4). "Solved" means 100 evaluations in a row at success exactly 1.00. Its
#   grid is the write-up's sixteen cells: three seeds where the cell is solved, one where it fails.
# * **`writeup_v1`**: this course's first reading of the write-up's *text*, before its code was
#   read: batches of 256 drawn with replacement, a smaller phi (2-64-64-1 with ReLU) and HER that
#   relabels every transition of the chosen episodes; otherwise as `writeup`. Its whole 7 x 6
#   grid is stored, and the differences turn out to matter.
# * **`default`**: the best settings of chapters 4-6: HER `future` with k = 4, 32 gradient
#   steps, Polyak 0.05, gamma max(0.98, 1 - 1/n), HAR fed distance / n, and "solved" meaning
#   5 evaluations in a row at success >= 0.99 on 1024 fresh agents.
#
# **The same moment on both sides.** The write-up's notebooks print "Early stopping at episode
# N" when the last 100 evaluations were all 1.00; N counts from 0, so the run had trained N + 1
# iterations. Every run here stores that moment (`confirmed_at`: the iteration at which its
# solved streak completed) beside the first iteration of the streak (`solved_at`). The tables
# show N + 1 for the write-up and the median `confirmed_at` here.
#
# **Check your understanding 1 (predict before you run the next cell).** The write-up's code
# solved vanilla HAR (no HER) at n = 20 after 484 iterations. Rerun with exactly its settings,
# with seed 0, what do you expect?
#
# 1. solved after a similar number of iterations;
# 2. solved much faster, since seeds barely matter once the settings are the same;
# 3. not solved at all within the 3000 iterations.
#
# <details><summary>Answer</summary>
#
# 3: look at the Vanilla-HAR row of the first table. Seed 0 never gets a single test agent to
# its goal, while another seed solves the cell. Without HER the agents see almost no rewards at
# n = 20, and whether vanilla HAR gets anywhere depends on the network it starts from (takeaway
# 4 shows how it can succeed at all). The write-up ran each cell once, and drew a network that
# worked.
# </details>

# %% [markdown]
# ## 2. The tables beside the write-up's
#
# Our cells read `median iterations until the streak completed (seeds solved / seeds run)`;
# `fails (0/3, best 0.12)` gives the median best success of seeds that never solved the cell;
# `-` is a cell not stored; the write-up's rows show N + 1, `fails`, or `?` where it did not run
# the cell. The `default` grid stops by its own, looser rule (5 evaluations at 0.99 or more), so
# its numbers are *not* the write-up's quantity: compare its verdicts only (section 4, takeaway 3
# compares its speed under the write-up's rule).

# %%
TITLES = {"writeup": "The write-up's code", "writeup_v1": "The first reading of the write-up",
          "default": "This course's settings (their own stopping rule: compare verdicts only)"}
for preset in TABLE_PRESETS:
    heading = f"**{TITLES[preset]}** (`results/{preset}`)\n\n"
    display(Markdown(heading + render_table(cells[preset])))
    rows = [r for r in comparison(cells[preset]) if r["agree"] is not None]
    differ = [r for r in rows if not r["agree"]]
    print(f"{preset}: {len(rows) - len(differ)} of {len(rows)} comparable cells agree "
          "with the write-up's verdicts; they differ at")
    for r in differ:
        print(f"    {r['method']:12s} n = {r['n']:2d}: {r['write-up']} in the write-up, "
              f"{r['ours']} here")

# %% [markdown]
# ## 3. Table 1 as a picture
#
# The write-up's sixteen cells against n, rerun with its code: a line per method (the median of
# the seeds that solved), the write-up's numbers dashed beside it, and crosses along the top for
# cells that fail. Both sides count the same moment. The y-axis is logarithmic: one grid line up
# is ten times as many iterations.

# %%
fig = new_figure(figsize=(9.0, 3.9))
left, right = fig.subplots(1, 2)
plot_iterations_vs_n(cells["writeup"], methods=["HER-HAR", "Vanilla-HAR"], ax=left,
                     title="HAR, the write-up's code")
plot_iterations_vs_n(cells["writeup"], methods=["HER-UVFA", "Vanilla-UVFA"], ax=right,
                     title="UVFA, the write-up's code")
fig

# %% [markdown]
# ## 4. Five takeaways
#
# **1. The write-up's code reproduces its central result.** Rerun with its settings, every seed
# of HER-HAR reaches success 1.00 at n = 20 to 50, and the median of the seeds that meet the
# write-up's strict "solved" lies within a factor of two of its count at every n; the small UVFA
# cells land close to its numbers too. Seeds spread the counts widely, though: at n = 40 one
# seed needs about four times as many iterations as another. And the strict rule can fail a
# near-perfect seed: a seed that hovers at 0.999, one agent in 1024 missing its goal now and then,
# never strings 100 perfect evaluations together. The next cell checks these statements against
# the stored runs.

# %%
for method, n in WRITEUP_CELLS:
    cell = cells["writeup"].get((method, n))
    theirs = writeup_iterations(method, n)
    if cell is None or not isinstance(theirs, int) or cell.median_confirmed_at is None:
        continue
    ratio = cell.median_confirmed_at / theirs
    print(f"{method:12s} n = {n:2d}: write-up {theirs:5d}, "
          f"median here {cell.median_confirmed_at:6.0f} "
          f"({cell.n_solved}/{cell.n_runs} seeds), ratio {ratio:.2f}")
    if method == "HER-HAR":
        assert all(r.best_success == 1.0 for r in cell.runs) and 0.5 <= ratio <= 2, (method, n)
her_har40 = cells["writeup"]["HER-HAR", 40].confirmed_at
assert max(her_har40) >= 3.5 * min(her_har40)
for r in (r for r in grid["writeup"] if r.method == "HER-HAR" and not r.solved):
    late = r.curve("success_rate")[1][50:]  # the second half of its curve
    print(f"HER-HAR n = {r.n}, seed {r.seed}: not solved in {r.iterations} iterations, "
          f"yet at {min(late):.3f} or above over the second half of its curve")
    assert min(late) >= 0.99 and late.count(1.0) < len(late)

# %% [markdown]
# **2. One run per cell is a lottery ticket.** The write-up solved vanilla HAR at n = 20 after
# 484 iterations. With its code and the same settings, seed 0 never gets one of 1024 test agents
# to its goal in 3000 iterations, while another seed is solved, later than the write-up's run
# (left). So the network HAR starts from decides whether, without HER, it ever gets going; the
# write-up's single run drew one that did, and a single run cannot say how likely the other
# outcome was. The first reading, with a smaller phi, solves the same cell on every seed (right):
# the odds of the lottery depend on phi's shape too. From n = 30 on, the write-up's code fails
# without HER, as the write-up reports, where the first reading's smaller phi is solved by most
# seeds: the "fails" in those cells belongs to the write-up's network, not to vanilla HAR as such.

# %%
fig = new_figure(figsize=(9.0, 3.9))
left, right = fig.subplots(1, 2)
lottery = {preset: cells[preset]["Vanilla-HAR", 20] for preset in ("writeup", "writeup_v1")}
for ax, (preset, cell) in zip((left, right), lottery.items()):
    plot_metric(list(cell.runs), "success_rate", ax=ax, title=f"Vanilla-HAR, n = 20, {preset}",
                labels=[f"seed {r.seed} ({r.verdict})" for r in cell.runs])
right.set(xscale="log", xlabel="iteration (log scale)")
for r in lottery["writeup"].runs:
    outcome = (f"solved, streak completed at {r.confirmed_at}" if r.solved
               else f"not solved in {r.iterations} iterations, best success {r.best_success}")
    print(f"the write-up's code, seed {r.seed}: {outcome}")
seed0 = lottery["writeup"].run(0)
assert not seed0.solved and seed0.best_success == 0.0 and seed0.iterations == 3000
assert any(r.solved and r.confirmed_at > 484 for r in lottery["writeup"].runs)
assert lottery["writeup_v1"].n_solved == lottery["writeup_v1"].n_runs == 3
for n in (30, 40, 50):  # the write-up's code fails; the smaller phi is solved by most seeds
    code, first = cells["writeup"]["Vanilla-HAR", n], cells["writeup_v1"]["Vanilla-HAR", n]
    assert code.verdict == "failed" and first.n_solved >= 2, n
fig

# %% [markdown]
# **3. How much faster are this course's settings? Measure it under one rule.** The `default`
# grid stops after 5 evaluations at 0.99, much sooner than the write-up's rule, so its iteration
# counts cannot be set beside the write-up's. The cell below reads HER-HAR runs with the default
# settings that were made to stop by the write-up's rule instead (100 evaluations in a row at
# 1.00, `results/beyond/har_writeup_rule`) and compares them with the write-up's code at two
# moments: when the perfect streak starts and when it completes. It counts iterations, gradient
# steps (32 per iteration here, 5 in the write-up's code) and seconds of one CPU thread.

# %%
rule_runs = load_runs(RESULTS / "beyond" / "har_writeup_rule")
strict = table_cells(rule_runs)
compared = []
for n in (20, 30, 40, 50):
    fast, code = strict.get(("HER-HAR", n)), cells["writeup"].get(("HER-HAR", n))
    if fast is None or code is None or not fast.confirmed_at:
        continue
    pair = {"code": code, "fast": fast}
    steps = {name: cell.runs[0].config["gradient_steps"] for name, cell in pair.items()}
    start = {name: cell.median_solved_at for name, cell in pair.items()}
    end = {name: cell.median_confirmed_at for name, cell in pair.items()}
    seconds = {name: median(r.wall_seconds for r in cell.runs) for name, cell in pair.items()}
    print(f"n = {n}, the write-up's code against the default settings:\n"
          f"    streak starts after {start['code']:4.0f} against {start['fast']:3.0f} iterations, "
          f"{start['code'] * steps['code']:5.0f} against {start['fast'] * steps['fast']:4.0f} "
          "gradient steps\n"
          f"    streak completes after {end['code']:4.0f} against {end['fast']:3.0f} iterations, "
          f"{seconds['code']:4.0f} against {seconds['fast']:3.0f} seconds")
    assert fast.n_solved == fast.n_runs and end["fast"] < end["code"]
    assert start["fast"] <= 10 and start["fast"] * steps["fast"] < start["code"] * steps["code"]
    assert 3 * seconds["fast"] < seconds["code"]  # many times shorter in seconds
    compared.append(n)
assert compared, "results/beyond/har_writeup_rule holds no runs: results/README.md has the command"

# %% [markdown]
# Before the streak starts, the default settings need a handful of iterations at every n, and
# fewer gradient steps too, where the write-up's code needs hundreds of iterations: the speed-up
# is not bought with more updates. It comes from what each update learns from (HER `future`
# relabels four goals for every transition, `writeup30` one goal for 30% of the episodes), from
# gamma close to 1 and from the normalised distance (chapters 4-6). The streak itself is 100
# iterations on both sides, by the rule's construction, and the default settings pay 32 gradient
# steps for each of them; counted in seconds, the whole run is still many times shorter.
#
# **4. Vanilla HAR can succeed without seeing a single reward.** Chapter 3 showed that random
# agents at n = 30 almost never reach a goal (the write-up's estimate: 48000 n / 2^n rewards in
# its budget, far below 1). So how does vanilla HAR under the first reading solve n = 30 and
# more? The next cell reruns a stored cell of that grid and counts the rewards the agents have
# seen when the greedy policy first gets good. (With `LONG_STUDY = True` in it, full mode also
# reruns n = 50 for 3000 iterations, where success passes 0.5 between iterations 450 and 600
# with no reward seen by iteration 300.)

# %%
def rerun_counting_rewards(n: int, seed: int, iterations: int) -> list[dict]:
    """Rerun a first-reading vanilla-HAR cell for some iterations; returns its history."""
    config = make_config("writeup_v1", n=n, arch="har", her="none", seed=seed,
                         max_iterations=iterations)
    return train(config, progress=False).history


LONG_STUDY = False  # True: also rerun n = 50 for 3000 iterations (about 10 minutes on a laptop CPU)
history = rerun_counting_rewards(30, 1, 100)
good = next(h for h in history if h["success_rate"] > 0.5)
print(f"n = 30, seed 1: greedy success {good['success_rate']:.2f} "
      f"at iteration {good['iteration']}, "
      f"rewards seen so far: {good['rewards_seen']}")
assert good["iteration"] <= 20 and good["rewards_seen"] == 0
if LONG_STUDY and not QUICK:
    history = rerun_counting_rewards(50, 0, 3000)
    turn = next(h for h in history if h["success_rate"] > 0.5)
    print(f"n = 50, seed 0: rewards seen by iteration 300: {history[299]['rewards_seen']}; success "
          f"passes 0.5 at iteration {turn['iteration']} with {turn['rewards_seen']} rewards seen")
    assert history[299]["rewards_seen"] == 0 and 450 <= turn["iteration"] <= 600

# %% [markdown]
# The policy turns good *before* any reward arrives. Without rewards every TD target is gamma
# times a bootstrapped value, so the updates only drag the values of "flip a differing bit" and
# "flip a matching bit" around together, and whichever of the two phi happens to favour can end
# up on top. With HAR that one comparison *is* the policy: if the differing bit wins, the agents
# walk straight to their goals, and the rewards then pour in and lock it in. It is luck
# amplified by bootstrapping, which is why it depends on the seed and on phi's shape: the
# write-up's larger GELU phi drew the losing side at n = 20 with seed 0 (takeaway 2).
#
# **5. The generic networks show where the hard problem is.** With the write-up's code its UVFA
# reproduces its small cells. With this course's settings HER-UVFA also solves n = 20, the
# write-up's first HER-UVFA failure, on every seed. From n = 30 on it fails within the budget,
# but not in the way vanilla UVFA fails: the greedy agents end closer and closer to their goals,
# still improving when the 3000 iterations run out, while without HER they stay at the n/2 bits
# that a random goal starts away. "Fails" there means "needs a bigger budget".

# %%
fig = new_figure(figsize=(9.0, 3.4))
for ax, n in zip(fig.subplots(1, 3), (30, 40, 50)):
    pair = [cells["default"]["HER-UVFA", n].run(0), cells["default"]["Vanilla-UVFA", n].run(0)]
    plot_metric(pair, "mean_distance", labels=["HER", "vanilla"], ax=ax,
                title=f"UVFA at n = {n} (seed 0)")
assert cells["default"]["HER-UVFA", 20].verdict == "solved"  # takeaway 5
fig

# %% [markdown]
# **Check your understanding 2 (predict before you run the next cell).** HER-HAR under the first
# reading is "solved at 1" at n = 5 with seed 2. The next cell builds that run's network as it
# was before its first gradient step (the same settings and seed give the same initial weights)
# and tests it, greedily, on the run's own 1024 test goals. What success rate will it have?
#
# * (a) Close to 0: an untrained network acts at random, and a random walk rarely reaches a
#   goal within n flips (chapter 1).
# * (b) About 0.5: half of its choices are right.
# * (c) 1.00.
#
# <details><summary>Answer</summary>
#
# (c): the cell prints 1.00 for seed 2, so "solved at 1" was not learning at all. Its freshly
# initialised phi already gives a differing bit a higher value than a matching one at every
# distance, and a greedy HAR that does that walks straight to every goal. An untrained network
# is not random: it is a fixed, arbitrary policy, and at n = 5 HAR's phi has only two inputs to
# get right. The other two seeds start elsewhere (the cell prints them too), which is why the
# tables report a median over seeds, and why a single run per cell cannot tell luck from
# learning.
# </details>

# %%
import torch

from bitflip_lib.env import evaluation_seed
from bitflip_lib.trainer import build_network, evaluate

first_reading = {r.seed: r for r in grid["writeup_v1"] if r.method == "HER-HAR" and r.n == 5}
untrained = {}
for seed, run in sorted(first_reading.items()):
    config = run.train_config()
    network = build_network(config, torch.device("cpu"))  # the weights before the first step
    test_goals = torch.Generator().manual_seed(evaluation_seed(seed))
    untrained[seed] = evaluate(network, 5, config.num_eval_agents, config.max_steps,
                               test_goals)["success_rate"]
    print(f"seed {seed}: solved at {run.solved_at}; untrained network's success "
          f"{untrained[seed]:.2f}")
assert first_reading[2].solved_at == 1 and untrained[2] == 1.0  # question 2: (c)
assert min(untrained.values()) < 0.5  # another seed's initial weights are far from it
#
# ## 5. What disagrees with the write-up, and why
#
# The cells printed as "differ" in section 2 fall into four groups.
#
# * **Vanilla HAR at n = 20 with the write-up's code: "mixed".** The lottery of takeaway 2:
#   the write-up's one run drew a network that got going; seed 0 here did not.
# * **Vanilla HAR from n = 30 with the first reading and the default settings: solved.** The
#   write-up says "fails", and its code, rerun, fails too; with a smaller phi or this course's
#   settings most seeds solve it, at the speed of luck (takeaway 4).
# * **HER-HAR at n = 50 with the write-up's code, and at n = 40 and 50 with the first reading:
#   "mixed".** A seed that hovers just below 1.00, one or two of 1024 agents missing their goal,
#   never strings 100 perfect evaluations together. The rule, not the agent, makes the
#   difference.
# * **HER-UVFA at n = 20 with this course's settings: solved.** More relabelled goals and more
#   gradient steps per iteration get it there within 3000 iterations.

# %%
disagreeing = {preset: [r for r in comparison(cells[preset]) if r["agree"] is False]
               for preset in TABLE_PRESETS}
near_perfect_or_lottery = {("Vanilla-HAR", 20), ("HER-HAR", 50)}
assert {(r["method"], r["n"]) for r in disagreeing["writeup"]} <= near_perfect_or_lottery
assert {r["method"] for r in disagreeing["writeup_v1"]} <= {"HER-HAR", "Vanilla-HAR"}

# %% [markdown]
# > **Common pitfalls when comparing with a published table.**
# > * Comparing different moments of a run: "the streak started" and "the streak completed"
# >   differ by the length of the streak, here 100 iterations.
# > * Comparing "solved" under different rules: 100 evaluations in a row at exactly 1.00 is much
# >   stricter than 5 in a row at 0.99 or above. Rerun one side under the other's rule.
# > * Comparing iterations that hold different amounts of work: count gradient steps and
# >   seconds too.
# > * Comparing one run with a median of three: report how many seeds solved a cell, not only
# >   how fast.
# > * Reading "fails" as "impossible": a run still improving when its budget ends failed the
# >   budget, not the task. Look at the curve.
#
# ## 6. Browse the stored runs
#
# Pick a grid, a method and n to see the learning curves of its seeds (greedy success, or how
# far the greedy agents end from their goals). A dashed line and a dot mark where a seed was
# solved. When some seeds stop after a few iterations and others run all 3000, the iteration
# axis is logarithmic, so that a seed solved at iteration 1 is still visible.

# %%
from bitflip_lib.ui.explorers import StoredRunBrowser

browser = StoredRunBrowser(cells, preset="default", method="Vanilla-HAR", n=40)
shown = cells["default"]["Vanilla-HAR", 40]
assert f"{shown.n_solved} of {shown.n_runs} seeds solved" in browser.text.value
browser

# %% [markdown]
# ## 7. Checking the stored results
#
# Stored numbers are only worth something if they can be regenerated. The next cell reruns some
# cells from their stored configurations and checks that each comes out the same way: solved or
# not within the budget. Exact iteration counts may differ a little between machines and thread
# counts; verdicts should not. Quick mode reruns a few cheap cells; full mode adds two longer
# ones, and `LONG_STUDY = True` two stored failures that run all 3000 iterations.

# %%
RERUN_QUICK = [("default", "har", "future", 20, 0), ("default", "har", "none", 20, 0),
               ("writeup_v1", "har", "writeup30-whole", 5, 0),
               ("writeup_v1", "mlp", "writeup30-whole", 5, 0),
               ("writeup_v1", "uvfa", "writeup30-whole", 5, 0), ("writeup", "uvfa", "none", 5, 0)]
RERUN_FULL = RERUN_QUICK + [("default", "har", "future", 50, 0),
                            ("writeup", "har", "writeup30", 20, 0)]
RERUN_LONG = [("default", "har", "none", 40, 2), ("writeup_v1", "mlp", "none", 15, 0)]
if LONG_STUDY and not QUICK:  # stored failures: all 3000 iterations each
    RERUN_FULL = RERUN_FULL + RERUN_LONG
stored_by_name = {r.name: r for preset in TABLE_PRESETS for r in grid[preset]}
checked = []
for preset, arch, her, n, seed in (RERUN_QUICK if QUICK else RERUN_FULL):
    stored = stored_by_name[run_name(make_config(preset, n=n, arch=arch, her=her, seed=seed))]
    result = train(stored.train_config(device="auto"), progress=False)
    print(f"{stored.name}: stored solved_at={stored.solved_at}, rerun solved_at={result.solved_at} "
          f"({result.iterations} iterations, {result.wall_seconds:.1f} s)")
    assert result.solved == stored.solved, f"{stored.name}: the rerun's verdict differs"
    checked.append(stored.name)
assert len(checked) == len(RERUN_QUICK if QUICK else RERUN_FULL)

# %% [markdown]
# **Check your understanding 3.** HER-UVFA at n = 20 fails in the write-up and with its code
# here, but is solved by every seed under this course's settings. What is the most likely reason?
#
# 1. a bug in one of the two implementations;
# 2. the course's settings give the network many more useful updates per iteration (four
#    relabelled goals per transition, 32 gradient steps instead of 5), so it gets there within
#    the same budget;
# 3. luck of the seeds.
#
# <details><summary>Answer</summary>
#
# 2. The write-up's code, rerun, is still climbing when its budget ends, so the task is not out
# of reach, only slow; and all three seeds of the course's settings solve it, which luck would not
# explain. The reruns above make 1 unlikely for this side: stored results come out the same way
# when they are run again.
# </details>
#
# ## Summary
#
# * A long experiment belongs on disk next to the exact configuration that made it, and a sweep
#   should be resumable: `bitflip sweep` writes one file per run and skips what is stored;
#   `bitflip table` prints the tables you saw.
# * A reproduction compares the same quantity on both sides: the same moment of a run, under the
#   same rule, with the work per iteration stated.
# * Rerun with the write-up's code, its central claim holds: HER with its handcrafted
#   architecture reaches success 1.00 at n = 20-50 on every seed, and where a seed meets the
#   strict rule, within a factor of two of its counts (at n = 50 one seed of three does; the
#   other two hover at 0.999). Its one run per cell hides how much the counts depend on the
#   seed, and one of its cells (vanilla HAR at n = 20) is a lottery: seed 0 loses it, another
#   seed wins it.
# * With this course's settings (HER `future`, more gradient steps, faster Polyak averaging,
#   gamma near 1, the normalised distance) HER-HAR is faster in iterations, in gradient steps
#   and in seconds, under the write-up's own rule.
# * Vanilla HAR can turn good before it sees a reward, by luck amplified by bootstrapping.
# * The generic networks are where the hard problem lies: with this course's settings HER-UVFA
#   solves n = 20, the write-up's first failure, and from n = 30 on it moves closer but runs out
#   of budget. The appendix (chapter 7b) follows HAR to n = 1024 and a generic network to n = 100.
#
# All the numbers behind these sentences, and the command that regenerates each folder, are in
# [`results/README.md`](../results/README.md).
#
# ## Exercises
#
# 1. **Add a seed.** Pick a cell, run it with a seed the table does not have into a folder of
#    your own, and check whether your seed agrees with the stored ones, e.g.
#    `bitflip sweep --preset writeup --arch har --her none --n 20 --seeds 3 --out my_results`,
#    then `load_runs("my_results")` from `bitflip_lib.lab.runs`. Is vanilla HAR at n = 20 solved?
# 2. **Find the luckiest cell.** With `table_cells(load_grid(RESULTS, "default"))`, find the
#    cell whose fastest and slowest solving seeds are furthest apart (`cell.solved_at` lists
#    them). Plot its curves with `plot_metric`. Is the fast seed learning or lucky?
# 3. **A bigger budget.** Rerun HER-UVFA at n = 20 with the write-up's code and
#    `--max-iterations 6000`. Is it solved, and how does that change the verdict of the cell?
#
# The building blocks these runs exercise are those of `ex03_td_target`, `ex04_polyak`,
# `ex05_her_future` and `ex06_har`.
#
# ## References
#
# * Chau, Y. H. *Documentation of Bit Sequence mini RL project.* HKUST (the write-up this course
#   follows). Code: https://github.com/louis845/BitSeqRLToyProblem: Table 1 and the settings of
#   the `writeup` preset.
# * Andrychowicz, M., Wolski, F., Ray, A., Schneider, J., Fong, R., Welinder, P., McGrew, B.,
#   Tobin, J., Abbeel, P., and Zaremba, W. (2017). Hindsight Experience Replay. *Advances in
#   Neural Information Processing Systems 30* (NeurIPS 2017).
# * Schaul, T., Horgan, D., Gregor, K., and Silver, D. (2015). Universal Value Function
#   Approximators. *Proceedings of the 32nd International Conference on Machine Learning*
#   (ICML 2015), PMLR 37, 1312-1320.
# * Mnih, V., Kavukcuoglu, K., Silver, D., et al. (2015). Human-level control through deep
#   reinforcement learning. *Nature* 518, 529-533.
# * Henderson, P., Islam, R., Bachman, P., Pineau, J., Precup, D., and Meger, D. (2018). Deep
#   Reinforcement Learning that Matters. *Proceedings of the AAAI Conference on Artificial
#   Intelligence* 32.
# * Agarwal, R., Schwarzer, M., Castro, P. S., Courville, A., and Bellemare, M. G. (2021). Deep
#   Reinforcement Learning at the Edge of the Statistical Precipice. *Advances in Neural
#   Information Processing Systems 34* (NeurIPS 2021).
