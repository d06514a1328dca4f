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
# This chapter puts our own version of that table beside it, cell by cell, and asks what agrees,
# what does not, and why. Terms you may have forgotten are in the [glossary](glossary.md).
#
# **Learning objectives.** After this chapter you can
# 1. read a reproduction against the original cell by cell: solved or failed, and how fast;
# 2. explain why one run per cell cannot separate luck from learning, and what several seeds show;
# 3. name the settings that make this course's agents faster than the write-up's;
# 4. check stored results yourself, by rerunning a cell from its stored configuration.
#
# **Study time.** About 40 minutes of reading. Running the notebook takes about a minute on a
# laptop CPU (about 5 minutes in full mode, which reruns a few long cells).
#
# The grid behind the table costs more than a day of CPU, so its runs are *stored with the
# course* in `results/`, and this notebook reads them. Every number about them, with the
# command that made each one, is in the lab notebook [`results/README.md`](../results/README.md).
# The studies past n = 50 (HAR at n = 1024, a generic network at n = 50 and 100) are in the
# appendix, [chapter 7b](07b_beyond_table1.ipynb).

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
from pathlib import Path

import ipywidgets as widgets
from IPython.display import Markdown, display

from bitflip_lib import default_device, quick_mode
from bitflip_lib.config import make_config
from bitflip_lib.lab.runs import run_name
from bitflip_lib.lab.table1 import (
    PRESETS,
    TABLE_NS,
    WRITEUP_TABLE1,
    comparison,
    load_grid,
    missing_runs,
    render_table,
    table_cells,
)
from bitflip_lib.trainer import train
from bitflip_lib.ui.plots import new_figure, plot_iterations_vs_n, plot_metric

QUICK = quick_mode()
print("QUICK mode (small budgets)" if QUICK else "FULL mode")
default_device(announce=True)


def find_results() -> Path:
    """The course's results/ folder, whether the notebook runs from chapters/ or the course folder."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "results" / "default").is_dir():
            return folder / "results"
    raise FileNotFoundError("results/ not found: open this notebook inside the course folder")


RESULTS = find_results()
grid = {preset: load_grid(RESULTS, preset) for preset in PRESETS}
cells = {preset: table_cells(runs) for preset, runs in grid.items()}
for preset, runs in grid.items():
    print(f"{preset:8s}: {len(runs)} stored runs in {len(cells[preset])} cells")
assert not missing_runs(RESULTS), "some grid runs are missing: results/README.md has the commands that make them"

# %% [markdown]
# ## 1. What "reproducing" means here
#
# Every cell of the grid is one call of `train` per seed: one configuration, three seeds
# (0, 1, 2), a budget of 3000 iterations. A run that finishes is written to its own JSON file,
# named after its configuration (`default_n20_har_future-k4_s0.json`), so an interrupted sweep
# loses nothing and a rerun skips what is stored. The library reads such a file back as a
# `StoredRun`: its configuration, when it was solved, its best success and its learning curve.
#
# ```bash
# bitflip sweep --preset writeup --arch har uvfa mlp --her preset none \
#               --n 5 10 15 20 30 40 50 --seeds 0 1 2 --out results/writeup
# bitflip table --results results/writeup
# ```
#
# "Reproducing" can mean two things, so the grid was run twice:
#
# * **`writeup`**: the write-up's own settings, as far as it states them: gamma 0.9, Adam
#   (AMSGrad) with lr 1e-3, Polyak 0.01, 5 gradient steps per iteration, its HER variant that
#   relabels 30% of the episodes with one achieved state each (`seed30`), HAR fed the raw
#   distance, and "solved" meaning 100 evaluations in a row at success exactly 1.00.
# * **`default`**: the best settings of chapters 4-6: HER `future` with k = 4, 32 gradient
#   steps, Polyak 0.05, gamma max(0.98, 1 - 1/n), HAR fed distance / n, and "solved" meaning
#   5 evaluations in a row at success >= 0.99 on 1024 fresh agents.
#
# The write-up has one run per cell; we have three seeds. So we compare **verdicts**: a cell
# agrees when the write-up's "solved" or "fails" is what every seed did here; "mixed" means
# some seeds solved it and some did not.
#
# **Check your understanding 1 (predict before you run the next cell).** The write-up reports
# that vanilla HAR (no HER) *fails* from n = 30 on. Our `writeup` grid uses the same
# network, settings and budget, with three seeds. What do you expect in those cells: (a) all
# seeds fail, (b) some seeds solve it, (c) every seed solves it?
#
# <details><summary>Answer</summary>
#
# Mostly (c): look at the Vanilla-HAR rows of the first table below. Nearly every seed solves
# these cells, and the one that does not reaches success 1.00 too, without holding it for 100
# evaluations in a row. A single
# run, as in the write-up, drew the unlucky or the slow side, or differed in a detail that
# the write-up does not state. Takeaway 4 below shows how vanilla HAR can succeed at all.
# </details>

# %% [markdown]
# ## 2. The table beside the write-up's
#
# Our cells read `median iteration solved (seeds solved / seeds run)`; `fails (0/3, best 0.12)`
# gives the median best success of seeds that never solved it; the write-up's rows show its
# count, `fails`, or `?` where it did not run the cell.

# %%
for preset, title in (("writeup", "With the write-up's settings"), ("default", "With this course's settings")):
    display(Markdown(f"**{title}** (`results/{preset}`)\n\n" + render_table(cells[preset])))
    rows = [r for r in comparison(cells[preset]) if r["agree"] is not None]
    differ = [r for r in rows if not r["agree"]]
    print(f"{preset}: {len(rows) - len(differ)} of {len(rows)} comparable cells agree with the write-up; they differ at")
    for r in differ:
        print(f"    {r['method']:12s} n = {r['n']:2d}: {r['write-up']} in the write-up, {r['ours']} here")

# %% [markdown]
# ## 3. Table 1 as a picture
#
# The same cells against n: a line per method (the median of the seeds that solved), the
# write-up's numbers dashed beside it, and crosses along the top for cells that fail. The
# y-axis is logarithmic: one grid line up is ten times as many iterations.

# %%
fig = new_figure(figsize=(9.0, 7.4))
axes = fig.subplots(2, 2)
for row, preset in enumerate(PRESETS):
    plot_iterations_vs_n(cells[preset], methods=["HER-HAR", "Vanilla-HAR"], ax=axes[row, 0],
                         title=f"HAR, {preset} settings")
    plot_iterations_vs_n(cells[preset], methods=["HER-UVFA", "Vanilla-UVFA", "HER-MLP", "Vanilla-MLP"],
                         ax=axes[row, 1], title=f"generic networks, {preset} settings")
fig

# %% [markdown]
# ## 4. Five takeaways
#
# **1. HER with HAR reproduces the write-up's central result, and its success rule is strict.**
# Under the write-up's settings every seed of HER-HAR reaches greedy success 1.00 at every n,
# and at n = 20-40 the medians land within a factor of two of its 373, 613 and 636. Where a
# seed "fails" (the `2/3` cells at n = 40 and 50) it is not for lack of a good policy: it hovers just
# below 1.00, one or two of 1024 agents missing their goal, and never strings 100 perfect
# evaluations together. The left panel below shows the three seeds at n = 40.
#
# **2. Seeds matter more than one run per cell can show.** HAR's weights do not depend on n,
# so a seed starts from the same network at every n, and some initial networks are already
# optimal: their phi happens to rank "flip a differing bit" above "flip a matching bit" at every
# distance (chapter 6). Such a seed is "solved at iteration 1" without learning anything. The
# right panel shows the other side, vanilla HAR under our settings at n = 40: one seed that
# turns perfect within a few iterations, one that starts perfect, collapses after the first
# updates and climbs back much later, and one that never succeeds.

# %%
fig = new_figure(figsize=(9.0, 3.9))
left, right = fig.subplots(1, 2)
for ax, (preset, method, n) in ((left, ("writeup", "HER-HAR", 40)), (right, ("default", "Vanilla-HAR", 40))):
    cell = cells[preset][method, n]
    plot_metric(list(cell.runs), "success_rate", labels=[f"seed {r.seed} ({r.verdict})" for r in cell.runs], ax=ax,
                title=f"{method}, n = {n}, {preset} settings")
right.set(xscale="log", xlabel="iteration (log scale)")
assert all(r.best_success == 1.0 for r in grid["writeup"] if r.method == "HER-HAR")  # takeaway 1
fig

# %% [markdown]
# **3. With this course's settings HER-HAR is about a hundred times faster**: a handful of
# iterations at every n from 5 to 50, where the write-up needed hundreds. It is learning, not a
# lucky start: at n >= 30 every seed's success first *falls* during the first updates and is back
# at 1.00 a few iterations later. The levers are those of chapters 4-6: HER `future` (four
# relabelled goals for every transition, instead of one for 30% of the episodes), 32 instead of
# 5 gradient steps per iteration, a faster Polyak fraction, gamma close to 1, and the
# normalised distance feature.
#
# **4. Vanilla HAR can succeed without seeing a single reward.** Chapter 3 showed that random
# agents at n = 30 almost never reach a goal (the write-up's estimate: 48000 n / 2^n rewards
# in its budget, far below 1). So how does vanilla HAR solve n = 30 and more? The next cell
# reruns a stored write-up-settings cell and counts the rewards the agents have seen when the
# greedy policy first gets good.

# %%
def rerun_counting_rewards(n: int, seed: int, iterations: int) -> list[dict]:
    """Rerun a write-up-settings vanilla-HAR cell for some iterations; returns its history."""
    config = make_config("writeup", n=n, arch="har", her="none", seed=seed, max_iterations=iterations)
    return train(config, progress=False).history


history = rerun_counting_rewards(30, 1, 100)
good = next(h for h in history if h["success_rate"] > 0.5)
print(f"n = 30, seed 1: greedy success {good['success_rate']:.2f} at iteration {good['iteration']}, "
      f"rewards seen so far: {good['rewards_seen']}")
assert good["iteration"] <= 20 and good["rewards_seen"] == 0
if not QUICK:
    history = rerun_counting_rewards(50, 0, 3000)
    turn = next(h for h in history if h["success_rate"] > 0.5)
    print(f"n = 50, seed 0: rewards seen by iteration 300: {history[299]['rewards_seen']}; success passes 0.5 at "
          f"iteration {turn['iteration']} with {turn['rewards_seen']} rewards seen")
    assert history[299]["rewards_seen"] == 0 and 450 <= turn["iteration"] <= 600

# %% [markdown]
# The policy turns good *before* any reward arrives. Without rewards every TD target is
# gamma times a bootstrapped value, so the updates only drag the values of "flip a differing
# bit" and "flip a matching bit" around together, and whichever of the two phi happens to
# favour can end up on top. With HAR that one comparison *is* the policy: if the differing bit
# wins, the agents walk straight to their goals, and the rewards then pour in and lock it in.
# It is luck amplified by bootstrapping, which is why it depends so much on the seed.
#
# **5. The generic networks show where the hard problem is.** Under the write-up's settings its
# UVFA reproduces its small cells, successes and failures alike. With this course's settings
# HER-UVFA also solves n = 20, the write-up's first HER-UVFA failure, on every seed. From n = 30
# on it fails within the budget, but not in the way vanilla UVFA fails: the greedy agents end
# closer and closer to their goals, still improving when the 3000 iterations run out, while
# without HER they stay at the n/2 bits that a random goal starts away. "Fails" there means
# "needs a bigger budget", and the gap grows with n.

# %%
fig = new_figure(figsize=(9.0, 3.4))
for ax, n in zip(fig.subplots(1, 3), (30, 40, 50)):
    pair = [cells["default"]["HER-UVFA", n].run(0), cells["default"]["Vanilla-UVFA", n].run(0)]
    plot_metric(pair, "mean_distance", labels=["HER", "vanilla"], ax=ax, title=f"UVFA at n = {n} (seed 0)")
assert cells["default"]["HER-UVFA", 20].verdict == "solved"  # takeaway 5
fig

# %% [markdown]
# **Check your understanding 2.** A cell under the write-up's settings reads `5 (3/3)` for
# HER-HAR at n = 5, but one of its seeds was "solved at 1". Did that seed learn anything?
#
# <details><summary>Answer</summary>
#
# No. Solved at iteration 1 means the very first evaluations, after only a few gradient steps,
# were already perfect: the freshly initialised phi already preferred differing bits at every
# distance. That is why the table reports a median over seeds, and why a single run per cell
# cannot tell luck from learning.
# </details>
#
# ## 5. What disagrees with the write-up, and why
#
# The cells printed as "differ" in section 2 fall into three groups.
#
# * **Vanilla HAR from n = 30 (both presets).** The write-up says "fails"; here most seeds solve
#   it, at the speed of luck (takeaway 4). With one run per cell the write-up may have drawn a
#   seed like seed 2 at n = 40 under our settings, which stays at zero for all 3000 iterations,
#   or its code differs in a detail it does not state; from the write-up alone we cannot tell.
# * **HER-HAR at n = 40 and 50 with the write-up's settings: "mixed".** A near-perfect seed
#   counts as failed under the 100-perfect-evaluations rule (takeaway 1). A single run could have
#   landed on either side; the rule, not the agent, makes the difference.
# * **HER-UVFA at n = 20 with this course's settings: solved.** The write-up's settings fail
#   here too (as in the write-up), while still climbing at the end of the budget. More
#   relabelled goals and more gradient steps per iteration get it there within 3000 iterations.

# %%
disagreeing = {preset: [r for r in comparison(cells[preset]) if r["agree"] is False] for preset in PRESETS}
assert {r["method"] for r in disagreeing["writeup"]} <= {"HER-HAR", "Vanilla-HAR"}  # only HAR cells differ there

# %% [markdown]
# > **Common pitfalls when comparing with a published table.**
# > * Comparing one run with a median of three: report how many seeds solved a cell, not only how fast.
# > * Comparing "solved" under different rules: 100 evaluations in a row at exactly 1.00 is much
# >   stricter than 5 in a row at 0.99 or above, and it turns near-perfect runs into failures.
# > * Reading "fails" as "impossible": a run still improving when its budget ends failed the
# >   budget, not the task. Look at the curve.
# > * Trusting iteration counts to the last digit across machines: floating-point sums depend on
# >   thread counts, so counts can shift a little; verdicts should not.
#
# ## 6. Browse the stored runs
#
# Pick a preset, a method and n to see the learning curves of its three seeds (greedy success,
# or how far the greedy agents end from their goals). A dashed line and a dot mark where a seed
# was solved. When some seeds stop after a few iterations and others run all 3000, the iteration
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
# counts; verdicts should not. Quick mode reruns a few cheap cells, one per architecture; full
# mode adds longer ones, among them stored failures that run all 3000 iterations.

# %%
RERUN_QUICK = [("default", "har", "future", 20, 0), ("default", "har", "none", 20, 0),
               ("writeup", "har", "seed30", 5, 0), ("writeup", "mlp", "seed30", 5, 0),
               ("writeup", "uvfa", "seed30", 5, 0)]
RERUN_FULL = RERUN_QUICK + [("default", "har", "future", 50, 0), ("writeup", "har", "seed30", 20, 0),
                            ("default", "har", "none", 40, 2), ("writeup", "mlp", "none", 15, 0),
                            ("writeup", "uvfa", "none", 15, 0)]
stored_by_name = {r.name: r for preset in PRESETS for r in grid[preset]}
checked = []
for preset, arch, her, n, seed in (RERUN_QUICK if QUICK else RERUN_FULL):
    stored = stored_by_name[run_name(make_config(preset, n=n, arch=arch, her=her, seed=seed))]
    result = train(stored.train_config(device="auto"), progress=False)
    print(f"{stored.name}: stored solved_at={stored.solved_at}, rerun solved_at={result.solved_at} "
          f"({result.iterations} iterations, {result.wall_seconds:.1f} s)")
    assert result.solved == stored.solved, f"{stored.name}: the rerun's verdict differs from the stored one"
    checked.append(stored.name)
assert len(checked) == len(RERUN_QUICK if QUICK else RERUN_FULL)

# %% [markdown]
# **Check your understanding 3 (multiple choice).** HER-UVFA at n = 20 fails in the write-up
# and under its settings here, but is solved by every seed under this course's settings. What is
# the most likely reason?
# (a) a bug in one of the two implementations; (b) the course's settings give the network many
# more useful updates per iteration (four relabelled goals per transition, 32 gradient steps
# instead of 5) so it gets there within the same budget; (c) luck of the seeds.
#
# <details><summary>Answer</summary>
#
# (b). Under the write-up's settings the runs are still climbing when the budget ends, so the
# task is not out of reach, only slow; and all three seeds of the course's settings solve it,
# which luck would not explain. The reruns above make (a) unlikely for our side: stored
# results come out the same way when they are run again.
# </details>
#
# ## Summary
#
# * A long experiment belongs on disk next to the exact configuration that made it, and a sweep
#   should be resumable: `bitflip sweep` writes one file per run and skips what is stored;
#   `bitflip table` prints the table you saw.
# * Under its own settings the write-up's central claim holds: HER with its handcrafted
#   architecture solves n = 20-50 in hundreds of iterations, close to its numbers. Its strict
#   success rule turns near-perfect seeds into "fails".
# * With this course's settings (HER `future`, more gradient steps, faster Polyak averaging,
#   gamma near 1) HER-HAR needs a handful of iterations at every n up to 50.
# * Vanilla HAR is seed-dependent rather than failing from n = 30: it can turn good before it
#   sees a reward, by luck amplified by bootstrapping. One run per cell cannot show that.
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
#    your own, and check whether your seed agrees with the three stored ones, e.g.
#    `bitflip sweep --preset writeup --arch har --her preset --n 20 --seeds 3 --out my_results`,
#    then `load_runs("my_results")` from `bitflip_lib.lab.runs`.
# 2. **Find the luckiest cell.** With `table_cells(load_grid(RESULTS, "default"))`, find the
#    cell whose fastest and slowest solving seeds are furthest apart (`cell.solved_at` lists
#    them). Plot its three curves with `plot_metric`. Is the fast seed learning or lucky?
# 3. **A bigger budget.** Rerun one seed of HER-UVFA at n = 20 under the write-up's settings with
#    `--max-iterations 6000`. Is it solved, and how does that change the verdict of the cell?
#
# The building blocks these runs exercise are those of `ex03_td_target`, `ex04_polyak`,
# `ex05_her_future` and `ex06_har`.
#
# ## References
#
# * Chau, Y. H. *Documentation of Bit Sequence mini RL project.* HKUST (the write-up this course
#   follows). Code: https://github.com/louis845/BitSeqRLToyProblem. Table 1 and the settings of the `writeup` preset.
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
