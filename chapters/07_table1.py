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
# The write-up this course is built on (Chau, seeds/000) ends with one table: for n = 5 ... 50
# bits, how many iterations (batches of 16 parallel episodes) goal-conditioned DQN needed to
# solve bit flipping, with and without Hindsight Experience Replay (Andrychowicz et al. 2017),
# with the write-up's UVFA network (Schaul et al. 2015) and with its handcrafted architecture
# HAR. Several of its cells say "fails", and several were never run.
#
# Reproducing a table like this is an experiment of its own. It costs hours of CPU, so its
# results are **stored with the repository** (`results/`), and this notebook reads them. It
# does not trust them blindly: it reruns a handful of cheap cells and checks that they come
# out the same way.
#
# **Learning goals.** After this chapter you can
# 1. run a grid of experiments with the `bitflip` command line, resumably, and read it back;
# 2. compare a reproduction with the original cell by cell: solved or failed, and how fast;
# 3. say which of the write-up's conclusions hold here, which do not, and why;
# 4. see how far the ideas of chapters 4-6 carry: HAR at n = 1024, and a HAR trained at n = 20
#    used unchanged at n = 1024.
#
# **Run time.** Quick mode (CI): about 1 minute on a 2-core CPU. Full mode: 4 minutes
# measured on this 2-core CPU with one torch thread (it also reruns a stored 3000-iteration
# failure). The stored grid itself took hours; see `results/README.md`.

# %%
import json
import math
import statistics
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from bitflip_lib import default_device, quick_mode
from bitflip_lib.config import make_config
from bitflip_lib.sweep import (TABLE_NS, WRITEUP_TABLE1, aggregate, cell_name, cell_verdict, config_from_dict,
                               describe_overrides, load_results, missing_cells, render_table,
                               writeup_verdict)
from bitflip_lib.trainer import train

QUICK = quick_mode()
print("QUICK mode (CI budgets)" if QUICK else "FULL mode")
default_device(announce=True)


def find_results() -> Path:
    """The repository's results/ folder, whether the notebook runs from chapters/ or the root."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "results" / "default").is_dir():
            return folder / "results"
    raise FileNotFoundError("results/ not found: run this notebook inside the course repository")


RESULTS = find_results()
print("stored results:", RESULTS)

# %% [markdown]
# ## 1. How the grid was run
#
# Every cell of the grid is one call of `train` with one configuration and one seed. The
# command line runs a whole grid and writes each finished cell to its own JSON file, named
# after its configuration, so an interrupted sweep loses nothing and a rerun skips what is
# done:
#
# ```bash
# bitflip sweep --preset writeup --arch har uvfa mlp --her preset none \
#               --n 5 10 15 20 30 40 50 --seeds 0 1 2 --out results/writeup
# bitflip table --results results/writeup
# ```
#
# Two presets were run, because "reproducing" can mean two things:
#
# * **`writeup`**: the write-up's own settings as far as it states them: gamma 0.9, Adam with
#   AMSGrad lr 1e-3, Polyak 0.01, 5 gradient steps per iteration, its HER variant that
#   relabels 30% of the trajectories with one achieved state each (`seed30`), HAR fed the raw
#   Hamming distance, and "solved" meaning 100 evaluations in a row at success 1.00.
# * **`default`**: the best settings this course found (chapters 4-6): HER `future` with
#   k = 4, 32 gradient steps, Polyak 0.05, gamma max(0.98, 1 - 1/n), HAR fed distance / n, and
#   "solved" meaning 5 evaluations in a row at success >= 0.99 on 1024 fresh agents.
#
# In both, a cell counts as failed if it is not solved within 3000 iterations, and an
# iteration is one episode of 16 agents, as in the write-up. Our cells read `median
# iteration solved (seeds solved / seeds run)`; `fails (0/3, best 0.12)` gives the median of
# the best success reached; `-` means not computed (never invented).

# %%
rows = {preset: load_results(RESULTS / preset, overrides={}) for preset in ("writeup", "default")}
for preset, found in rows.items():
    methods = sorted({r["method"] for r in found})
    print(f"{preset:8s}: {len(found):3d} stored runs, methods {methods}")
entries = {preset: aggregate(found) for preset, found in rows.items()}
assert rows["default"] and rows["writeup"], "the stored grid is missing: see results/README.md"

# %% [markdown]
# ## 2. Table 1 under the write-up's settings

# %%
display(Markdown(render_table(entries["writeup"])))

# %% [markdown]
# ## 3. Table 1 under this course's settings

# %%
display(Markdown(render_table(entries["default"])))

# %% [markdown]
# ## 4. Cell by cell
#
# The write-up's table has one number per cell, from one run. Ours has up to three seeds. We
# compare verdicts: a cell agrees when the write-up's "solved" or "fails" matches what **every**
# seed did here; "mixed" means some seeds solved and some did not.

# %%
def comparison(preset: str) -> list[dict]:
    by_key = {(e["method"], e["n"]): e for e in entries[preset]}
    out = []
    for method in WRITEUP_TABLE1:
        for n in TABLE_NS:
            theirs, ours = writeup_verdict(method, n), cell_verdict(by_key.get((method, n)))
            out.append({"method": method, "n": n, "write-up": theirs, "ours": ours,
                        "agree": None if "missing" in (theirs, ours) else theirs == ours})
    return out


compared = {preset: comparison(preset) for preset in entries}
for preset, cells in compared.items():
    checked = [c for c in cells if c["agree"] is not None]
    agree = [c for c in checked if c["agree"]]
    print(f"{preset}: {len(checked)} cells comparable, {len(agree)} agree")
    for c in checked:
        if not c["agree"]:
            print(f"   differs: {c['method']:13s} n={c['n']:<3d} write-up {c['write-up']:7s} here {c['ours']}")

# %% [markdown]
# ### What the comparison says
#
# **HER-HAR with the write-up's settings reproduces the write-up.** Every seed reaches a
# greedy success of 1.00 at every n we ran, and at n = 20-40 the median number of iterations
# of the solving seeds lands within a factor of two of the write-up's (hundreds of
# iterations: it reports 373, 613 and 636). Our "solved at" is the first of the 100
# consecutive perfect evaluations that the write-up's stopping rule asks for. That rule is
# strict: at n = 40 and at n = 50 one seed reached 1.00 and then kept dipping to 0.998-0.999
# (one or two agents out of 1024 missing their goal) and never strung 100 perfect evaluations
# together in 3000 iterations, so it counts as a failure although its policy is nearly
# perfect. A single run per cell, as in the write-up, could have landed on either side.
#
# **The spread over seeds is large, and one kind of seed is lucky.** In several cells one seed
# is "solved" within the first 10 iterations while the others need hundreds. That is not
# learning: a freshly initialised HAR computes the same function phi for every bit, so its
# greedy policy only has to prefer "flip a differing bit" over "flip a matching bit" at every
# distance, and a random initialisation sometimes does that already (chapter 6). HAR's weights
# do not depend on n, so a seed starts from the same network at every n: under the write-up's
# settings seed 2's initial network is already perfect at n <= 20 (success 1.00 at the very
# first evaluation, "solved at 1"), and it is the fastest seed at n = 30-50 as well. With a
# single run per cell, as in the write-up, such luck cannot be told apart from learning;
# three seeds show it.
#
# **With this course's settings HER-HAR is about a hundred times faster**: a median of at
# most 7 iterations at every n from 5 to 50, where the write-up needed 373-658. This is
# learning, not only a lucky start: at n >= 30 every seed's success falls (to about
# 0.1-0.6) during the first updates and is back at 1.00 a few iterations later. The levers
# are those of chapters 4-6: HER `future` (k = 4 relabelled goals per transition instead of
# one for 30% of the episodes), 32 instead of 5 gradient steps per iteration, a faster Polyak
# fraction (0.05), gamma close to 1 and the normalised distance feature.
#
# **Vanilla HAR is a coin toss, not a clean "fails from n = 30".** With the default settings
# every seed solves n <= 30 and n = 50, and two of three solve n = 40; more than half of the 21
# runs are solved within 1-3 iterations and the n = 50 ones within 10 (two seeds) or 405. The
# curves show how: in those runs the greedy policy is either perfect from the start or flips to
# perfect after a few iterations, far too soon to have learnt from rewards, which vanilla agents
# at n >= 30 almost never see (the write-up's estimate 48000n / 2^n << 1, Chau, seeds/000).
# The same network can fall the other way: seed 1 starts perfect at n >= 15, collapses to 0.00
# after the first updates, and needs 10 (n = 15) to 144-405 (n = 20-50) iterations to come
# back; seed 2 at n = 40 stays at 0.00 for all 3000 iterations. Without rewards, the updates
# only drag the Q-values of "flip a differing bit" and "flip a matching bit" around together,
# and which one ends up on top is luck.
#
# **Even under the write-up's own settings, vanilla HAR does not fail from n = 30 here.** With
# its gamma 0.9, Polyak 0.01, 5 gradient steps and raw distance, all three seeds solve every
# n from 5 to 40, and two of three solve n = 50; the third reaches 1.00 early, dips as low as
# 0.83 in its first half and stays within 0.98-1.00 in its second, without the 100 perfect
# evaluations in a row that the write-up's rule asks for.
# It is slow, typically hundreds of iterations at n >= 20 (up to 1414). The cell below reruns
# two of these cells and counts rewards: at n = 30 (seed 1) the greedy success passes 0.5 at
# iteration 10 having seen no reward at all, and the rewards only pour in once the policy is
# good; at n = 50 (seed 0, full mode) the agents see no reward in 300 iterations, the policy
# turns good around iteration 525 and it is solved at 536 with about a hundred rewards seen.
# Where the write-up saw "fails" at n >= 30, a single run can only have drawn the slow or the
# unlucky side: its budget and success rule were the same as here, so the difference is
# most likely the draw, or details of its implementation that it does not state.
#
# **The generic networks where they are cheap enough to run.** With the write-up's settings its
# UVFA reproduces its small cells: HER-UVFA solves n = 5, 10 and 15 (medians 95, 500 and 1618
# against its 203, 494 and 2590) and vanilla UVFA n = 5 and 10 (134 and 1184 against 209 and
# 1003), all three seeds each. Its failures are reproduced too where they are stored: vanilla
# UVFA at n = 15 stays below 1% success, and HER-UVFA at n = 20 is not solved in 3000
# iterations, although it is still climbing at the end (0.28 on seed 0), so "fails" there means
# "needs a bigger budget". At n = 30, 40 and 50, "?" in the write-up, it fails for real: no seed
# gets above 1.4% success in 3000 iterations, although with HER the greedy agents end about 8
# bits from their goals at n = 30 (instead of the 15 they start from), about 13.5 at n = 40
# (instead of 20) and about 21 at n = 50 (instead of 25): closer, not there, and less so as n
# grows. Without HER they stay where they started (20.5 at n = 40, 25.5 at n = 50). With these
# cells the write-up-settings grid is complete: 126 runs.
# With this course's settings the HER paper's MLP solves n = 5 ... 40 with HER on every seed
# (median 1145 iterations at n = 30; 2427 at n = 40), but stays below 1% success at
# n = 50 for all 3000 iterations (section 8 shows what it takes to get it moving there); the
# same network without HER solves n = 5 and 10 and never gets above 1% success in 3000
# iterations from n = 15 on, with either preset. That is the picture of chapters 3-4. With the
# write-up's settings (its 30% HER with one goal, gamma 0.9, 5 gradient steps per iteration)
# HER-MLP stops short: n = 15 is solved by two seeds of three, at n = 20 every seed reaches
# 1.00 and stays above 0.95 but none keeps it for the 100 evaluations in a row the write-up's
# rule asks, and from n = 30 on nothing gets above 1%: how much HER and how many updates decide
# how far a generic network gets. The write-up's UVFA with HER, under this course's settings,
# solves n = 15 where the write-up needed 2590 iterations: all three seeds, median 1110. And it
# solves n = 20, where the write-up's UVFA failed: all three seeds, at iterations 1876, 2210 and
# 2428. At n = 30 no seed of three solves it within the 3000 iterations, but every one is on its
# way: success passes 1% only between iterations 1450 and 1670 and then climbs to a best of
# 0.45-0.56 by the end, with the greedy agents ending 1.6-2.3 bits from their goals (15 at the
# start). At n = 40 the budget runs out earlier in that story, the same way on all three seeds:
# success never passes 0.1%, but the greedy agents' distance falls steadily over the second
# half, from 20 bits to 13.6-13.7 at iteration 3000, still falling (the mean over each tenth of
# the run drops by about 1 bit per tenth from the middle on). At n = 50 it gets less far still,
# again the same way on all three seeds: not one of the 1024 evaluation agents reaches its goal
# in any evaluation, but the distance falls from 25.5 to 22.8-23.4 bits over the 3000
# iterations, faster towards the end (about 0.2 bits per tenth of the run in the middle,
# 0.3-0.5 in the last three).
# Without HER the default settings leave UVFA at the n/2 bits it starts from at n = 30, 40 and
# 50; at n = 50 not one evaluation agent reaches its goal either, and the curve never goes
# below 24.5 bits. With these cells the default-settings grid is complete too: 126 runs.

# %%
def entry(preset: str, method: str, n: int) -> dict | None:
    """The seeds of one cell, aggregated (runs, solved, median_solved_at...), or None."""
    return next((e for e in entries[preset] if e["method"] == method and e["n"] == n), None)


def runs(preset: str, method: str, *ns: int) -> list[dict]:
    """The stored runs (one per seed) of a method at the given n."""
    return [r for r in rows[preset] if r["method"] == method and r["n"] in ns]


# Write-up settings, HER-HAR: every stored seed reached success 1.00; at n = 20-40 the median of
# the solving seeds is within a factor of two of the write-up's count.
her_har_writeup = [r for r in rows["writeup"] if r["method"] == "HER-HAR"]
assert her_har_writeup and all(r["best_success"] == 1.0 for r in her_har_writeup)
for n in (20, 30, 40):
    e = entry("writeup", "HER-HAR", n)
    theirs = WRITEUP_TABLE1["HER-HAR"][n]
    assert e["runs"] == 3 and theirs / 2 <= e["median_solved_at"] <= 2 * theirs, (n, e["median_solved_at"], theirs)
# The one strict-criterion failure: n = 40, near-perfect in its second half but never 100 x 1.00 in a row.
unsolved = sorted((r for r in her_har_writeup if not r["solved"]), key=lambda r: r["n"])
assert [(r["n"], r["iterations"]) for r in unsolved] == [(40, 3000), (50, 3000)], unsolved
for r in unsolved:
    late = r["curve"]["success_rate"][50:]  # the second half of the stored curve
    assert min(late) >= 0.998 and late.count(1.0) < len(late), r["name"]
# The lucky seed: seed 2 solves fastest at every n under the write-up's settings.
seed2 = {r["n"]: r["solved_at"] for r in her_har_writeup if r["seed"] == 2}
assert len(seed2) == 7 and all(seed2[n] <= 16 for n in TABLE_NS if n <= 40) and seed2[50] <= 89, seed2
assert all(r["solved_at"] is None or r["solved_at"] >= seed2[r["n"]] for r in her_har_writeup)

# Lucky seeds: some cell has one seed solved within 10 iterations and another after more than 100.
lucky = [(p, e["method"], e["n"]) for p in entries for e in entries[p]
         if e["solved_at"] and e["solved_at"][0] <= 10 and e["solved_at"][-1] > 100]
print("cells with a lucky seed (<= 10 iterations) next to a slow one (> 100):", lucky)
assert len(lucky) >= 3

# ... and seed 2's initial network is already perfect at n <= 20.
assert all(r["curve"]["success_rate"][0] == 1.0 and r["solved_at"] == 1
           for r in her_har_writeup if r["seed"] == 2 and r["n"] <= 20)

# Default settings, HER-HAR: all 3 seeds solve every n = 5..50, median at most 7 iterations;
# at n >= 30 success first drops to 0.1-0.6 and then recovers.
for n in TABLE_NS:
    e = entry("default", "HER-HAR", n)
    assert e is not None and e["runs"] == 3 and e["solved"] == 3 and e["median_solved_at"] <= 7, (n, e)
for r in rows["default"]:
    if r["method"] == "HER-HAR" and r["n"] >= 30:
        assert 0.05 <= min(r["curve"]["success_rate"][:3]) <= 0.6 and r["solved_at"] <= 7, r["name"]

# Default settings, vanilla HAR: all seeds solve n <= 30; at n = 40 one seed never succeeds.
for n in (5, 10, 15, 20, 30):
    e = entry("default", "Vanilla-HAR", n)
    assert e["runs"] == 3 and e["solved"] == 3, (n, e)
e40 = entry("default", "Vanilla-HAR", 40)
failed40 = [r for r in rows["default"] if r["method"] == "Vanilla-HAR" and r["n"] == 40 and not r["solved"]]
assert e40["runs"] == 3 and e40["solved"] == 2 and len(failed40) == 1
assert failed40[0]["best_success"] == 0.0 and failed40[0]["iterations"] == 3000
vanilla = {(r["seed"], r["n"]): r for r in rows["default"] if r["method"] == "Vanilla-HAR"}
quick_ones = [r for r in vanilla.values() if r["solved"] and r["solved_at"] <= 3]
print(f"default vanilla-HAR: {len(quick_ones)} of {len(vanilla)} runs solved within 1-3 iterations")
assert len(quick_ones) > len(vanilla) / 2, len(quick_ones)  # more than half: 1-3 iterations
e50 = entry("default", "Vanilla-HAR", 50)
assert e50["runs"] == 3 and e50["solved"] == 3 and sorted(e50["solved_at"]) == [9, 10, 405], e50
for n in (15, 20, 30, 40, 50):  # seed 1: perfect at first, then collapse
    c = vanilla[(1, n)]["curve"]["success_rate"]
    assert c[0] == 1.0 and min(c[1:4]) <= 0.01, (n, c[:4])
assert [vanilla[(1, n)]["solved_at"] for n in (20, 30, 40, 50)] == [144, 362, 257, 405]
assert vanilla[(2, 40)]["best_success"] == 0.0

# Write-up settings, vanilla HAR: 3/3 seeds for n = 5..40, 2/3 at n = 50, the third near-perfect.
for n in TABLE_NS:
    e = entry("writeup", "Vanilla-HAR", n)
    assert e is not None and e["runs"] == 3 and e["solved"] == (3 if n <= 40 else 2), (n, e)
vanilla_writeup = [r for r in rows["writeup"] if r["method"] == "Vanilla-HAR"]
assert max(r["solved_at"] for r in vanilla_writeup if r["solved"]) == 1414
unsolved = [r for r in vanilla_writeup if not r["solved"]]
assert len(unsolved) == 1 and unsolved[0]["best_success"] == 1.0 and min(unsolved[0]["curve"]["success_rate"][50:]) >= 0.98

# Generic networks: the write-up's UVFA cells at n = 5 and 10, and HER-UVFA at n = 15, are
# reproduced (every seed solves); the MLP with HER solves n <= 40 on every seed, not n = 50.
for method, n in [("HER-UVFA", 5), ("HER-UVFA", 10), ("HER-UVFA", 15), ("Vanilla-UVFA", 5), ("Vanilla-UVFA", 10)]:
    e = entry("writeup", method, n)
    assert e["runs"] == 3 and e["solved"] == 3 and e["median_solved_at"] <= 1.5 * WRITEUP_TABLE1[method][n], (method, n, e)
for n in (5, 10, 15, 20, 30, 40):
    e = entry("default", "HER-MLP", n)
    assert e["runs"] == 3 and e["solved"] == 3, (n, e)
assert entry("default", "HER-MLP", 30)["median_solved_at"] > 1000
mlp0 = {(r["her"], r["n"]): r for r in rows["default"] if r["arch"] == "mlp" and r["seed"] == 0}
assert mlp0["future", 40]["solved_at"] == 2380
e40 = entry("default", "HER-MLP", 40)
assert e40["runs"] == 3 and e40["solved"] == 3 and e40["median_solved_at"] == 2427, e40
assert not mlp0["future", 50]["solved"] and mlp0["future", 50]["best_success"] < 0.01
assert all(not r["solved"] and r["best_success"] < 0.01
           for r in runs("default", "HER-MLP", 50))
# The write-up's "fails" are reproduced where they are stored: vanilla UVFA from n = 15 on never
# gets above 1% success, and HER-UVFA at n = 20 is not solved in 3000 iterations, though it is
# still climbing (success 0.2-0.4 at the end): a budget, not a wall.
w_fail = [r for r in rows["writeup"]
          if (r["method"] == "Vanilla-UVFA" and r["n"] >= 15) or (r["method"], r["n"]) == ("HER-UVFA", 20)]
assert len(w_fail) >= 15 and all(not r["solved"] and r["iterations"] == 3000 for r in w_fail)
assert all(r["best_success"] < 0.01 for r in w_fail if r["method"] == "Vanilla-UVFA")
assert all(0.2 <= r["success_rate"] < 0.99 for r in w_fail if r["method"] == "HER-UVFA")
# At n = 30, 40 and 50 HER-UVFA fails too, but its agents end short of the n/2 bits they start
# from, where vanilla UVFA's stay at about n/2.
for n, her_distance in ((30, 10), (40, 15), (50, 23)):
    her_uvfa = runs("writeup", "HER-UVFA", n)
    assert len(her_uvfa) == 3 and all(not r["solved"] and r["best_success"] < 0.02 and r["mean_distance"] < her_distance
                                      for r in her_uvfa), n
for n in (40, 50):
    vanilla_uvfa = runs("writeup", "Vanilla-UVFA", n)
    assert len(vanilla_uvfa) == 3 and all(r["mean_distance"] > n / 2 - 1 for r in vanilla_uvfa), n
# The write-up-settings grid is complete.
assert len(rows["writeup"]) == 126 and not any(p == "writeup" for p, _ in missing_cells(RESULTS)), "missing write-up cells"
# This course's settings do not rescue vanilla UVFA at n = 15, 20 or 30 either (HER does: see
# below). At n = 30 its greedy agents end where random strings start, about n/2 = 15 bits away.
d_fail = runs("default", "Vanilla-UVFA", 15, 20, 30)
assert len(d_fail) == 9 and all(r["best_success"] < 0.01 and r["iterations"] == 3000 for r in d_fail)
assert all(r["mean_distance"] > 14 for r in runs("default", "Vanilla-UVFA", 30))
e = entry("default", "HER-UVFA", 15)
assert e["solved"] == e["runs"] >= 2 and max(e["solved_at"]) < WRITEUP_TABLE1["HER-UVFA"][15] / 2, e
# ... and solves n = 20, the write-up's first HER-UVFA failure, on every seed within the budget.
e = entry("default", "HER-UVFA", 20)
assert e["runs"] == 3 and e["solved"] == 3 and max(e["solved_at"]) < 3000, e


def first_at(run: dict, level: float) -> int | None:
    """The first evaluated iteration at which the run's greedy success reached ``level``."""
    return next((i for i, v in zip(run["curve"]["iteration"], run["curve"]["success_rate"]) if v >= level), None)


# At n = 30 the stored seeds are not solved, but still climbing: flat for the first half of the
# budget, then up to success >= 0.4 and a final distance under 3 bits by iteration 3000.
her_uvfa30 = runs("default", "HER-UVFA", 30)
assert len(her_uvfa30) == 3 and all(not r["solved"] and r["iterations"] == 3000 and 0.44 <= r["best_success"] <= 0.57
                                    and 1.5 <= r["mean_distance"] <= 2.4 for r in her_uvfa30)  # "0.45-0.56", "1.6-2.3"
for r in her_uvfa30:
    curve = r["curve"]["success_rate"]
    assert max(curve[: len(curve) // 2]) < 0.05 and max(curve[-len(curve) // 10:]) >= 0.4, r["name"]
    assert 1400 <= first_at(r, 0.01) <= 1700, (r["name"], first_at(r, 0.01))  # "passes 1% between 1450 and 1670"
# At n = 40 HER-UVFA fails within the budget but is moving: below 0.1% throughout, while the
# distance falls from about 20 to 13.6-13.7 bits; from the middle of the run on, the mean
# distance of each tenth of the curve is at least half a bit below the tenth before.
# Vanilla UVFA stays at about n/2: 20 bits at n = 40, 25 at n = 50.
def tenth_means(values: list[float]) -> list[float]:
    """The mean of each tenth of a thinned learning curve (100 points: 10 means of 10)."""
    tenth = len(values) // 10
    return [sum(values[i * tenth:(i + 1) * tenth]) / tenth for i in range(10)]


her_uvfa40 = runs("default", "HER-UVFA", 40)
assert len(her_uvfa40) == 3, "expected 3 stored default-settings HER-UVFA runs at n = 40"
for r in her_uvfa40:
    distance = r["curve"]["mean_distance"]
    means = tenth_means(distance)
    assert not r["solved"] and r["best_success"] < 0.001 and abs(r["mean_distance"] - 13.65) < 0.1, r["name"]
    assert min(distance[:len(distance) // 10]) > 19.5, r["name"]
    assert all(later < earlier - 0.5 for earlier, later in zip(means[4:], means[5:])), (r["name"], means)
# At n = 50: no evaluation agent ever succeeds; the tenth means fall over the second half,
# 0.3-0.5 bits per tenth over the last three.
her_uvfa50 = runs("default", "HER-UVFA", 50)
assert len(her_uvfa50) == 3, "expected 3 stored default-settings HER-UVFA runs at n = 50"
for r in her_uvfa50:
    means = tenth_means(r["curve"]["mean_distance"])
    assert not r["solved"] and r["best_success"] == 0 and means[0] > 25, (r["name"], means)
    assert means[-1] < means[0] - 1.5 and r["mean_distance"] < 24, (r["name"], means)
    assert all(later < earlier for earlier, later in zip(means[4:], means[5:])), (r["name"], means)
    assert all(0.3 <= earlier - later <= 0.5 for earlier, later in zip(means[6:], means[7:])), (r["name"], means)
vanilla_uvfa40 = runs("default", "Vanilla-UVFA", 40)
assert len(vanilla_uvfa40) == 3 and all(r["best_success"] < 0.01 and r["mean_distance"] > 19 for r in vanilla_uvfa40)
vanilla_uvfa50 = runs("default", "Vanilla-UVFA", 50)
assert len(vanilla_uvfa50) == 3, "expected 3 stored default-settings vanilla UVFA runs at n = 50"
assert all(r["best_success"] == 0 and min(r["curve"]["mean_distance"]) > 24.5 for r in vanilla_uvfa50)
# Without HER the MLP never gets going from n = 15 on, with either preset: every stored run
# spends its 3000 iterations below 1% success.
for preset in ("default", "writeup"):
    hopeless = [r for r in rows[preset] if r["method"] == "Vanilla-MLP" and r["n"] >= 15]
    assert len(hopeless) >= 6 and all(r["best_success"] < 0.01 and r["iterations"] == 3000 for r in hopeless), preset
    assert entry(preset, "Vanilla-MLP", 10)["solved"] == 3

# With the write-up's settings (its 30% HER, gamma 0.9, 5 gradient steps) the MLP stops short:
# n = 15 is solved by 2 of 3 seeds under the strict rule (the third ends at >= 0.99), n = 20 by
# none although every seed reaches 1.00 and stays above 0.95, and from n = 30 on no run gets
# above 1%. This course's settings solve n = 30 and 40 with the same network.
mlp_w = {(r["n"], r["seed"]): r for r in rows["writeup"] if r["method"] == "HER-MLP"}
assert entry("writeup", "HER-MLP", 15)["solved"] == 2 and min(mlp_w[15, s]["success_rate"] for s in (0, 1, 2)) >= 0.99
for seed in (0, 1, 2):
    r = mlp_w[20, seed]
    assert not r["solved"] and r["best_success"] == 1.0 and min(r["curve"]["success_rate"][50:]) > 0.95, r["name"]
late = [r for (n, _), r in mlp_w.items() if n >= 30]
assert len(late) >= 6 and all(r["best_success"] < 0.01 for r in late)


# %%
def rerun_counting_rewards(n: int, seed: int, iterations: int):
    """Rerun a stored write-up-settings vanilla-HAR cell for some iterations; returns its history."""
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
# ## 5. Success against n
#
# The fraction of seeds that solved each cell, and how many iterations the solving seeds
# needed (median), per method and preset. A missing point is a cell not computed.

# %%
STYLE = {"HER-HAR": ("tab:green", "-"), "Vanilla-HAR": ("tab:green", "--"), "HER-UVFA": ("tab:blue", "-"),
         "Vanilla-UVFA": ("tab:blue", "--"), "HER-MLP": ("tab:orange", "-"), "Vanilla-MLP": ("tab:orange", "--")}
fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
for column, preset in enumerate(("writeup", "default")):
    for method, (colour, line) in STYLE.items():
        cells = sorted((e for e in entries[preset] if e["method"] == method), key=lambda e: e["n"])
        if not cells:
            continue
        ns = [e["n"] for e in cells]
        axes[0, column].plot(ns, [e["solved"] / e["runs"] for e in cells], line, color=colour, marker="o", label=method)
        solved = [e for e in cells if e["solved"]]
        axes[1, column].plot([e["n"] for e in solved], [e["median_solved_at"] for e in solved], line, color=colour,
                             marker="o", label=method)
    axes[0, column].set(title=f"preset {preset}: seeds that solved", ylabel="fraction of seeds solved", ylim=(-0.05, 1.05))
    axes[1, column].set(title=f"preset {preset}: iterations to solve (median of solving seeds)",
                        xlabel="number of bits n", ylabel="iterations", yscale="log")
    for ax in axes[:, column]:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Learning curves
#
# Each stored cell keeps a thinned learning curve (at most 100 evaluations). Here is the greedy
# success rate of seed 0 against iterations for every n, one panel per method and preset.

# %%
def curve_panel(ax, preset: str, method: str) -> None:
    found = sorted((r for r in rows[preset] if r["method"] == method and r["seed"] == 0), key=lambda r: r["n"])
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(found):
        c = r["curve"]
        ax.plot(c["iteration"], c["success_rate"], color=cmap(i / max(len(found) - 1, 1)), label=f"n={r['n']}")
    ax.set(title=f"{method}, preset {preset} (seed 0)", xlabel="iteration", ylabel="greedy success rate",
           xscale="log", ylim=(-0.02, 1.02))
    if found:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "not computed", ha="center", transform=ax.transAxes)


panels = [(p, m) for p in ("writeup", "default") for m in ("HER-HAR", "Vanilla-HAR", "HER-UVFA", "Vanilla-UVFA")]
fig, axes = plt.subplots(2, 4, figsize=(18, 8))
for ax, (preset, method) in zip(axes.flat, panels):
    curve_panel(ax, preset, method)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 7. Beyond the write-up: n = 1024
#
# The write-up stops at n = 50. Chapter 6 argued that HAR's inductive bias makes n nearly
# irrelevant, as long as gamma approaches 1 (the default preset uses gamma = 1 - 1/n). The
# stored runs in `results/beyond/` test that; the list below prints whatever is stored there.

# %%
BEYOND = RESULTS / "beyond"
beyond = {p.stem: json.loads(p.read_text()) for p in sorted(BEYOND.glob("*.json"))} if BEYOND.is_dir() else {}
for name, record in beyond.items():
    s = record["summary"]
    print(f"{name}: n={s['n']} {s['arch']} her={s['her']} solved_at={s['solved_at']} after {s['iterations']} "
          f"iterations, final success {s['success_rate']}, {record['wall_seconds']:.0f} s on {record['device']}")
    for n, ev in record.get("evaluated_at", {}).items():
        print(f"    used unchanged at n={n:>5}: success {ev['success_rate']:.3f}, mean final distance {ev['mean_distance']:.2f}")

# %% [markdown]
# **Training from scratch at n = 1024 gets there with a much bigger replay buffer.** With the
# default settings HER-HAR at n = 1024 gets its greedy agents from 512 to about 230-300 bits
# within ten iterations and stalls there; Polyak 0.05 or 0.1, batch 1024, 128 gradient steps,
# lr 3e-4, HER `episode` and a dueling head did not change that. The default buffer is too
# small for this n: one iteration stores 16 x 1024 played transitions plus 4 relabelled copies
# of each, about 82,000, so a 2^15 buffer holds less than half of the last iteration and every
# update sees only the latest stretch of the walk. With a 2^20 buffer (about 13 iterations,
# 3 GiB of bits at n = 1024) and nothing else changed, the greedy policy becomes perfect at
# times (1.00 seven times between iterations 85 and 119, one seed) but keeps falling back to
# hundreds of bits in between: the gap between a good and a bad flip, about 1e-3 here, is still
# within the noise of the updates. With the learning rate also falling along a cosine to 1e-5
# over a 200-iteration budget, the same seed strings five perfect evaluations together (on 1024
# fresh agents) at iterations 95-99, so it counts as solved from scratch; seed 1 is solved at
# iteration 166 (423 s on one core) and seed 2 at iteration 83. Seed 0's curve before that
# swings between perfect and 200-500 bits just like the constant-rate run, and at iteration 95
# the rate has only halved; seed 1 settles only once the rate is below a tenth of its start. So
# the decay likely helps (the constant-rate run also had only 120 iterations), but three seeds
# do not show how much of it is the decay and how much the timing; the plot shows all four
# runs. n = 256 solves with the defaults alone (iteration 22).
#
# **A HAR trained at n = 20 works unchanged at n = 1024.** The network trained at n = 20
# (default settings, solved within a few iterations) is evaluated on 1024 fresh agents at
# n = 50, 100, 200, 500 and 1024 without any further training: every agent reaches its goal,
# and in the fewest possible flips (the mean number of steps equals the mean start distance).
# This works because HAR's input is the pair (does this bit differ, distance / n): a network
# that ranks "differs" above "matches" at every distance feature in [0, 1] is optimal at every
# n. UVFA and the MLP cannot even be asked: their input layers have n-dependent shapes.

# %%
transfer = beyond.get("har_n20_evaluated_at_1024")
assert transfer is not None, "results/beyond/har_n20_evaluated_at_1024.json is missing"
assert transfer["summary"]["n"] == 20 and transfer["summary"]["solved_at"] is not None
for n in ("50", "100", "200", "500", "1024"):
    ev = transfer["evaluated_at"][n]
    assert ev["success_rate"] == 1.0, (n, ev)
    assert abs(ev["mean_steps"] - ev["mean_start_distance"]) < 1e-9, (n, ev)

# %%
scratch = {seed: beyond.get(f"her_har_n1024_s{seed}") for seed in (0, 1, 2)}
buffer_only = beyond.get("her_har_n1024_buffer_only_s0")
assert all(scratch.values()) and buffer_only, "results/beyond/her_har_n1024_*.json are missing (commands in results/README.md)"
solved_at = {seed: record["summary"]["solved_at"] for seed, record in scratch.items()}
print("HER-HAR from scratch at n = 1024 (2^20 buffer, cosine lr to 1e-5), solved at:", solved_at)
for seed, record in scratch.items():
    config = record["config"]
    assert config["n"] == 1024 and config["buffer_capacity"] == 2**20 and config["lr_end"] == 1e-5, seed
    assert record["summary"]["success_rate"] >= 0.99, record["summary"]
assert solved_at == {0: 95, 1: 166, 2: 83}, solved_at
fig, (ax_success, ax_distance) = plt.subplots(1, 2, figsize=(12, 4), sharex=True)
runs_1024 = [(buffer_only, "seed 0, 2^20 buffer, constant lr")]
runs_1024 += [(record, f"seed {seed}, 2^20 buffer, cosine lr to 1e-5") for seed, record in scratch.items()]
for record, label in runs_1024:
    curve = record["curve"]
    ax_success.plot(curve["iteration"], curve["success_rate"], label=label)
    ax_distance.plot(curve["iteration"], curve["mean_distance"], label=label)
ax_success.set(xlabel="iteration", ylabel="greedy success rate", title="HER-HAR trained from scratch at n = 1024")
ax_distance.set(xlabel="iteration", ylabel="mean final distance (bits)")
ax_success.legend()
fig.tight_layout()
plt.show()
# A 2^20 buffer alone: perfect seven times between iterations 85 and 119, not solved, and back
# to hundreds of bits in between.
curve = buffer_only["curve"]
perfect = [i for i, v in zip(curve["iteration"], curve["success_rate"]) if v == 1.0 and i >= 85]
assert len(perfect) == 7 and max(perfect) <= 119 and not buffer_only["summary"]["solved_at"], perfect
assert max(d for i, d in zip(curve["iteration"], curve["mean_distance"]) if 85 <= i <= 119) >= 100


def cosine_fraction(record: dict, iteration: int) -> float:
    """The learning rate a run used at ``iteration``, as a fraction of its starting rate."""
    config, done = record["config"], (iteration - 1) / record["config"]["max_iterations"]
    return (config["lr_end"] + (config["lr"] - config["lr_end"]) * (1 + math.cos(math.pi * done)) / 2) / config["lr"]


# Seed 0 swings between perfect and 200-500 bits before it settles, with the rate about halved;
# seed 1 settles with the rate below a tenth of its start.
before = [(v, d) for i, v, d in zip(*(scratch[0]["curve"][k] for k in ("iteration", "success_rate", "mean_distance")))
          if i < solved_at[0]]
assert any(v == 1.0 for v, _ in before) and any(d >= 200 for _, d in before)
assert 0.4 < cosine_fraction(scratch[0], solved_at[0]) < 0.6 and cosine_fraction(scratch[1], solved_at[1]) < 0.1

# %% [markdown]
# ## 8. Beyond the write-up: a generic network with HER at n = 30, 50 and 100
#
# HAR builds the answer into the network. The HER paper (Andrychowicz et al. 2017) solved
# n = 50 with a *generic* network: the concatenated state and goal into one hidden layer of
# 256 units (our `mlp`). The write-up's generic network (UVFA) failed from n = 20, and the best
# public result we know of needs about 1500 iterations at n = 50 (COURSE.md). How far does the
# MLP get here, and what does it take?
#
# The runs below start from the default preset (HER `future` k = 4, 32 gradient steps of batch
# 256 per iteration, Polyak 0.05, gamma = max(0.98, 1 - 1/n), buffer 2^15) and change one or
# two settings at a time; each row names what it changed. All use seed 0 (one run per row: a
# screening, not a verdict), and they are stored in `results/beyond/mlp_n30` and
# `results/beyond/mlp_n50` with their commands in `results/README.md`.

# %%
ablation = {}
for n in (30, 50):
    found = load_results(BEYOND / f"mlp_n{n}") if (BEYOND / f"mlp_n{n}").is_dir() else []
    found += [r for r in rows["default"] if r["method"] == "HER-MLP" and r["n"] == n and r["seed"] == 0]
    ablation[n] = sorted(found, key=lambda r: (r["solved_at"] or 10**9, -(r["best_success"] or 0)))
lines = ["| n | what changed | solved at | iterations run | best success | final mean distance | wall time |",
         "|---|---|---|---|---|---|---|"]
for n, found in ablation.items():
    for r in found:
        lines.append(f"| {n} | {describe_overrides(r['overrides'])} | {r['solved_at'] or 'not solved'} | {r['iterations']} | "
                     f"{r['best_success']:.2f} | {r['mean_distance']:.2f} | {r['wall_seconds']:.0f} s |")
display(Markdown("\n".join(lines)))

fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
for ax, (n, found) in zip(axes, ablation.items()):
    for r in found:
        c = r["curve"]
        ax.plot(c["iteration"], c["success_rate"], label=describe_overrides(r["overrides"]))
    ax.axvline(1000, color="grey", linestyle=":", linewidth=1)
    ax.set(title=f"HER-MLP at n = {n} (seed 0)", xlabel="iteration", ylabel="greedy success rate", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What the n = 30 screening says** (one seed per row, so differences of a few percent mean
# nothing):
#
# * **Keep more history.** Each iteration stores about 2400 transitions at n = 30 (480 played,
#   1920 relabelled), so the default buffer of 2^15 holds only the last 14 iterations. A buffer
#   of 2^20 (everything from about 440 iterations) brings the solve from 1184 down to 956
#   iterations: the relabelled goals of old episodes are still good training data.
# * **Spend more compute per iteration.** With the buffer at 2^20 and gamma 0.95 (901), four
#   times as many gradient steps per iteration gives 697, and four times the batch 588: the
#   data are there, the network simply needs more updates to fit them.
# * **A slightly shorter horizon helps, a much shorter one hurts.** gamma 0.95 is a little
#   faster than 0.98 (901 against 956); at gamma 0.9 the greedy success stalls at 0.8-0.92 and the
#   run is not solved in 1500 iterations.
# * **Double DQN and a wider layer do not matter here** (871 and 898 against 901).
#
# **At n = 50 the defaults are hopeless and compute is what moves it.** With the big buffer
# alone, or with double DQN on top, the success stays at 0.00 for 1500 iterations (the mean
# distance to the goal creeps from 25.5 to about 20). With gamma 0.95 and 128 gradient steps
# the MLP starts to succeed after about 600 iterations and reaches 0.60 by 1500; with batch 1024
# on top it reaches 0.83 within 1000 iterations (16,000 episodes), and given 2000 iterations it
# peaks at 0.95 and ends at 0.87-0.90. Doubling the gradient steps once more (256 of batch 1024)
# does not help: 0.60 by iteration 1000, behind the 128-step run, at three times the cost per
# iteration; the returns of more updates on the same data run out. A four times wider layer
# (1024 units) with 128 steps of batch 1024 is worse still: best 0.03 by iteration 1000, the
# mean distance only down to 19, at 3.2 s per iteration.
#
# **What helps most at the end is a learning-rate schedule.** The curves of the constant-rate runs
# creep and wobble through their last 10%, which looks like a step-size problem. With the same
# 128 steps of batch 1024 and the learning rate falling from 1e-3 to 1e-4 along a cosine over the
# 1000 iterations (`lr_end=1e-4`), the MLP reaches 0.95 at iteration 1000 instead of 0.83, with
# the agents ending 0.27 bits from their goals on average, and the curve is still rising. That is
# not "solved" (0.99 on 5 evaluations in a row): the goal of n = 50 within 1000 iterations is not
# reached here, but it is close (one seed, 19 minutes on one CPU core).

# %%
def run_with(n: int, budget: int | None = None, **changes) -> dict:
    """The stored seed-0 run at n whose settings differ from the default preset exactly by ``changes``
    (and, if given, whose iteration budget was ``budget``)."""
    for r in ablation[n]:
        overrides = {k: v for k, v in r["overrides"].items() if k != "max_iterations"}
        if overrides == changes and budget in (None, r["max_iterations"]):
            return r
    raise AssertionError(f"no stored HER-MLP run at n = {n} with {changes}: see results/README.md")


big = 2**20
at30 = {"default": run_with(30), "buffer": run_with(30, buffer_capacity=big),
        "gamma95": run_with(30, buffer_capacity=big, gamma=0.95),
        "gamma90": run_with(30, buffer_capacity=big, gamma=0.9),
        "steps128": run_with(30, buffer_capacity=big, gamma=0.95, gradient_steps=128),
        "batch1024": run_with(30, buffer_capacity=big, gamma=0.95, batch_size=1024),
        "double": run_with(30, buffer_capacity=big, gamma=0.95, double_dqn=True),
        "wide": run_with(30, buffer_capacity=big, gamma=0.95, hidden=[512])}
solved30 = {k: r["solved_at"] for k, r in at30.items()}
print("n = 30, solved at:", solved30)
assert solved30["buffer"] < solved30["default"]                           # keep more history
assert solved30["batch1024"] < solved30["steps128"] < solved30["gamma95"]  # more compute per iteration
assert solved30["gamma95"] <= solved30["buffer"] and solved30["gamma90"] is None  # gamma: 0.95 fine, 0.9 stalls
assert 0.8 <= at30["gamma90"]["best_success"] < 0.99
for key in ("double", "wide"):                                             # no real difference
    assert abs(solved30[key] - solved30["gamma95"]) <= 0.05 * solved30["gamma95"], (key, solved30[key])

at50_plain = [run_with(50, buffer_capacity=big), run_with(50, buffer_capacity=big, double_dqn=True)]
assert all(r["best_success"] == 0.0 and r["iterations"] == 1500 and r["mean_distance"] > 15 for r in at50_plain)
at50_steps = run_with(50, buffer_capacity=big, gamma=0.95, gradient_steps=128)
heavy = dict(buffer_capacity=big, gamma=0.95, gradient_steps=128, batch_size=1024)
at50_batch, at50_long = run_with(50, 1000, **heavy), run_with(50, 2000, **heavy)
assert not at50_steps["solved"] and 0.5 <= at50_steps["best_success"] < 0.99
assert not at50_batch["solved"] and at50_batch["iterations"] == 1000 and at50_batch["best_success"] >= 0.8
assert not at50_long["solved"] and 0.9 <= at50_long["best_success"] < 0.99
assert 0.85 <= at50_long["curve"]["success_rate"][-1] < 0.99
# Doubling the updates once more (256 steps of batch 1024, 2.7 s per iteration on one core) does
# not pay: by iteration 1000 it is behind the 128-step run.
at50_more = run_with(50, 1000, **{**heavy, "gradient_steps": 256})
assert not at50_more["solved"] and 0.3 <= at50_more["best_success"] < at50_batch["best_success"]
# Nor does a four times wider layer on top (hidden 1024, 3.2 s per iteration): it has barely
# started to succeed by iteration 1000.
at50_wide = run_with(50, 1000, **heavy, hidden=[1024])
assert not at50_wide["solved"] and at50_wide["best_success"] < 0.1 and at50_wide["mean_distance"] > 10
# A cosine learning-rate decay to 1e-4 is clearly ahead of the constant rate, and not solved yet.
at50_cosine = run_with(50, 1000, **heavy, lr_end=0.0001)
assert not at50_cosine["solved"] and at50_cosine["best_success"] >= 0.9
assert at50_cosine["best_success"] >= at50_batch["best_success"] + 0.05 and at50_cosine["mean_distance"] < 0.5
assert at50_cosine["success_rate"] == at50_cosine["best_success"]  # still rising: its best evaluation is its last
print(f"n = 50: best success {at50_steps['best_success']:.2f} (128 steps, 1500 iterations), "
      f"{at50_batch['best_success']:.2f} (128 steps of batch 1024, 1000 iterations), "
      f"{at50_long['best_success']:.2f} (the same, 2000 iterations), "
      f"{at50_more['best_success']:.2f} (256 steps of batch 1024, 1000 iterations), "
      f"{at50_wide['best_success']:.2f} (128 steps of batch 1024, hidden 1024, 1000 iterations), "
      f"{at50_cosine['best_success']:.2f} (128 steps of batch 1024, cosine learning rate, 1000 iterations)")

# %% [markdown]
# **Twice the batch again, and the last few percent.** With the cosine schedule in place, the
# runs below double the batch to 2048 (27-28 minutes on one core instead of 19) and then vary
# one thing at a time: how far the rate falls (1e-4 or 1e-5), a higher starting rate (2e-3, as
# the "scale the rate with the batch" rule of thumb would suggest), double DQN, and a slower
# target network (Polyak 0.01). The table gives the iteration at which each run's greedy
# success first reaches 0.5 and 0.9, its success at iteration 800, and its best.
#
# The larger batch gets going earlier: success reaches 0.5 50-70 iterations and 0.9 100-150
# iterations sooner than with batch 1024, and the best evaluation is 0.97-0.98. Letting the rate
# fall to 1e-5 instead of 1e-4 changes little. But every one of these runs then *creeps*: from
# about 0.9 at iteration 800 to 0.97 at 1000, short of the 0.99 that "solved" asks for. The
# 3% of agents that still fail end on average 6-10 bits from their goals (the mean final
# distance divided by the failure rate), most of the way from the 25 they start at. Why the
# last few percent come so slowly is not settled here. Double DQN does not help with it (best
# 0.95). The higher starting rate is far behind (0.63): a larger batch here does not call for
# a larger step. So is the slower target network (0.58): it moves a fifth as far towards the
# online network per update, values spread back from the goal more slowly, and the run
# reaches 0.5 about 250 iterations later.

# %%
def success_by(run: dict, iteration: int) -> float:
    """The run's greedy success at its last evaluation up to ``iteration``."""
    return [v for i, v in zip(run["curve"]["iteration"], run["curve"]["success_rate"]) if i <= iteration][-1]


wide_batch = {**heavy, "batch_size": 2048}
at2048 = {"batch 1024, lr cosine to 1e-4": at50_cosine,
          "batch 2048, lr cosine to 1e-4": run_with(50, 1000, **wide_batch, lr_end=0.0001),
          "batch 2048, lr cosine to 1e-5": run_with(50, 1000, **wide_batch, lr_end=1e-05),
          "batch 2048, lr 2e-3 cosine to 1e-4": run_with(50, 1000, **wide_batch, lr=0.002, lr_end=0.0001),
          "batch 2048, lr cosine to 1e-5, double DQN": run_with(50, 1000, **wide_batch, lr_end=1e-05, double_dqn=True),
          "batch 2048, lr cosine to 1e-5, Polyak 0.01": run_with(50, 1000, **wide_batch, lr_end=1e-05, polyak=0.01)}
display(Markdown("\n".join(
    ["| 128 gradient steps per iteration of | success 0.5 at | success 0.9 at | success at 800 | best (1000 iterations) | s / iteration |",
     "|---|---|---|---|---|---|"] +
    [f"| {label} | {first_at(r, 0.5) or '-'} | {first_at(r, 0.9) or '-'} | {success_by(r, 800):.2f} | "
     f"{r['best_success']:.3f} | {r['wall_seconds'] / r['iterations']:.2f} |" for label, r in at2048.items()])))


def check_big_batch_story(r: dict) -> None:
    """What the prose says of the batch-2048 runs: close, earlier than batch 1024, then creeping."""
    assert not r["solved"] and r["iterations"] == 1000 and 0.97 <= r["best_success"] < 0.99, r["name"]
    assert first_at(r, 0.5) <= first_at(at50_cosine, 0.5) - 50 and first_at(r, 0.9) <= first_at(at50_cosine, 0.9) - 100
    assert success_by(r, 800) >= 0.85 and r["best_success"] - success_by(r, 800) <= 0.11   # then it creeps
    assert 6 <= r["mean_distance"] / (1 - r["success_rate"]) <= 10                         # where the failing agents end


big_batch = [at2048["batch 2048, lr cosine to 1e-4"], at2048["batch 2048, lr cosine to 1e-5"]]
for r in big_batch:
    check_big_batch_story(r)
at50_double = at2048["batch 2048, lr cosine to 1e-5, double DQN"]
assert not at50_double["solved"] and at50_double["best_success"] < 0.96
assert at2048["batch 2048, lr 2e-3 cosine to 1e-4"]["best_success"] < 0.7
slow_target = at2048["batch 2048, lr cosine to 1e-5, Polyak 0.01"]
assert slow_target["best_success"] < 0.7 and first_at(slow_target, 0.5) >= first_at(big_batch[1], 0.5) + 200

# %% [markdown]
# Is that one lucky seed? The best of these recipes (batch 2048, cosine to 1e-4) run again with
# seed 1 (`results/beyond/mlp_n50_seed1`) tells the same story: 0.5 at iteration 617, 0.9 at
# 768, best 0.98, and 0.97 at iteration 1000, not solved.

# %%
seed1 = load_results(BEYOND / "mlp_n50_seed1")
assert len(seed1) == 1 and seed1[0]["seed"] == 1, "results/beyond/mlp_n50_seed1 should hold one run: see results/README.md"
assert seed1[0]["overrides"] == big_batch[0]["overrides"] and 0.96 <= seed1[0]["success_rate"] < 0.99
check_big_batch_story(seed1[0])
print(f"seed 1: success 0.5 at {first_at(seed1[0], 0.5)}, 0.9 at {first_at(seed1[0], 0.9)}, best {seed1[0]['best_success']:.3f}")

# %% [markdown]
# **What else could help at n = 50?** A cheaper screening answers it: 500 iterations each, seed 0,
# from the big buffer and gamma 0.95 with the default 32 gradient steps of batch 256, changing
# one thing at a time (`results/beyond/mlp_n50_screen`). None of them succeeds yet after 500
# iterations, so the yardstick is how far the greedy agents still end from their goals
# (25 bits at the start): the lower, the further along the run is.

# %%
def screen_label(run: dict) -> str:
    k = run["config"]["k"]
    changes = {key: v for key, v in run["overrides"].items() if key not in ("buffer_capacity", "gamma", "max_iterations")}
    return ", ".join(filter(None, [describe_overrides(changes) if changes else "", f"k = {k}" if k != 4 else ""])) or "nothing else (the baseline)"


screen = sorted(load_results(BEYOND / "mlp_n50_screen"), key=lambda r: r["mean_distance"])
display(Markdown("\n".join(["| change | mean distance after 500 iterations | s / iteration |", "|---|---|---|"] +
                            [f"| {screen_label(r)} | {r['mean_distance']:.1f} | {r['wall_seconds'] / r['iterations']:.2f} |"
                             for r in screen])))
by_label = {screen_label(r): r for r in screen}
assert len(screen) >= 8 and all(r["iterations"] == 500 and r["best_success"] < 0.01 for r in screen)
# Only the two changes that spend more computation per iteration beat the baseline clearly
# (and they cost 2-3 times as much per iteration); the rest do not help.
assert {screen_label(r) for r in screen[:2]} == {"hidden [1024]", "batch 1024"}, [screen_label(r) for r in screen]
base = by_label["nothing else (the baseline)"]["mean_distance"]
for label in ("hidden [256, 256]", "lr 0.0003", "lr 0.003", "Polyak 0.01", "k = 8"):
    assert by_label[label]["mean_distance"] >= base - 0.5, (label, by_label[label]["mean_distance"], base)

# %% [markdown]
# So a second hidden layer, a smaller or larger learning rate, a slower target network and more
# relabelled goals per transition do not speed up the start; a four times wider layer and a four
# times larger batch do, in line with the n = 30 screening: at n = 50 the MLP is short of
# computation per iteration, not of data or of tricks. (One seed, 500 iterations: a screening,
# not a verdict.) The two do not add up, though: on top of 128 steps of batch 1024, the wide
# layer is far behind the narrow one (the table above), so a screening at 32 steps of batch 256
# does not tell which network is best once the updates are many and large.

# %% [markdown]
# **n = 100.** We know of no result for a generic network at n = 100. One run (seed 0) of the best
# n = 50 recipe, scaled: 128 steps of batch 1024, a 2^20 buffer, the learning rate falling from
# 1e-3 to 1e-4 along a cosine, and gamma 0.98 (a random goal is 50 bits away at n = 100, so a
# horizon of about 50 steps plays the part that gamma 0.95's 20 steps play at n = 50). To save
# time the greedy evaluation uses 256 agents instead of 1024, and the run had at most 2000
# iterations or 51 minutes of one CPU core, whichever came first
# (`results/beyond/mlp_n100`). The plot puts it beside the n = 50 run with the same recipe,
# with the mean final distance divided by the mean start distance n / 2.

# %%
at100 = load_results(BEYOND / "mlp_n100") if (BEYOND / "mlp_n100").is_dir() else []
assert len(at100) == 1, "results/beyond/mlp_n100 should hold one run: see results/README.md"
run100 = at100[0]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for r, n in ((at50_cosine, 50), (run100, 100)):
    c = r["curve"]
    axes[0].plot(c["iteration"], c["success_rate"], label=f"n = {n}")
    axes[1].plot(c["iteration"], [d / (n / 2) for d in c["mean_distance"]], label=f"n = {n}")
axes[0].set(title="HER-MLP, cosine learning rate (seed 0)", xlabel="iteration", ylabel="greedy success rate",
            ylim=(-0.02, 1.02))
axes[1].set(title="how far the greedy agents end from their goals", xlabel="iteration",
            ylabel="mean final distance / (n / 2)", ylim=(0, 1.1))
for ax in axes:
    ax.legend()
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()
print(f"n = 100: {run100['iterations']} iterations in {run100['wall_seconds'] / 60:.0f} min ({run100['stopped_by']}), "
      f"best success {run100['best_success']:.3f}, final mean distance {run100['mean_distance']:.1f} of about 50 at the start")
# Nothing: the greedy agents end as far from their goals as they started, through all 2000
# iterations.
assert not run100["solved"] and run100["iterations"] == 2000 and run100["best_success"] == 0.0
assert all(d > 0.95 * 50 for d in run100["curve"]["mean_distance"])
# At n = 50 the same recipe had halved the distance (25 bits at the start) within 600 iterations.
c50 = at50_cosine["curve"]
assert min(d for i, d in zip(c50["iteration"], c50["mean_distance"]) if i <= 600) < 0.5 * 25

# %% [markdown]
# **At n = 100 this recipe gets nowhere.** In 2000 iterations (32,000 episodes, 51 minutes on one
# core) no greedy agent reaches its goal, and the mean final distance stays at the 50 bits it
# starts from: the MLP does not even learn to move closer, where at n = 50 the same recipe had
# the distance falling from about iteration 100 on. HER's relabelled goals still carry rewards
# at n = 100 (a `future` goal is a state the agent did reach); what fails is turning them into
# a policy that moves toward far goals. Why, and what would fix it (more updates per
# iteration, a longer run, a curriculum over n, a network with some of HAR's structure), is
# open: one seed and one budget show where this recipe stops, not that nothing can work.

# %% [markdown]
# ## 9. Checking the stored results
#
# Stored numbers are only worth something if they can be regenerated. Here we rerun some
# cells from their stored configurations and check that the verdict (solved or not within the
# budget) is the same. Exact iteration counts may differ a little between machines and thread
# counts (floating-point sums are not associative), verdicts should not.

# %%
# (preset, arch, HER, n, seed): cheap cells in quick mode, one per architecture (the UVFA cell also
# checks that the faster UVFA code of a later library version agrees with runs stored before it);
# full mode adds longer ones, among them stored failures (vanilla HAR, n = 40, seed 2, vanilla MLP
# and vanilla UVFA, n = 15: 3000 iterations each).
RERUN_QUICK = [("default", "har", "future", 20, 0), ("default", "har", "none", 20, 0),
               ("writeup", "har", "seed30", 5, 0), ("writeup", "mlp", "seed30", 5, 0),
               ("writeup", "uvfa", "seed30", 5, 0)]
RERUN_FULL = RERUN_QUICK + [("default", "har", "future", 50, 0), ("writeup", "har", "seed30", 20, 0),
                            ("default", "har", "none", 40, 2), ("writeup", "mlp", "none", 15, 0),
                            ("writeup", "uvfa", "none", 15, 0)]
stored_by_name = {r["name"]: r for preset in rows for r in rows[preset]}
checked = []
for preset, arch, her, n, seed in (RERUN_QUICK if QUICK else RERUN_FULL):
    name = cell_name(make_config(preset, n=n, arch=arch, her=her, seed=seed))
    stored = stored_by_name.get(name)
    if stored is None:
        print(f"{name}: not stored yet, nothing to check")
        continue
    result = train(config_from_dict(stored["config"], device="auto"), progress=False)
    print(f"{name}: stored solved_at={stored['solved_at']}, rerun solved_at={result.solved_at} "
          f"({result.iterations} iterations, {result.wall_seconds:.1f} s)")
    assert result.solved == stored["solved"], f"{name}: the rerun's verdict differs from the stored one"
    checked.append(name)
assert checked, "no stored cell could be rerun"

# %% [markdown]
# ## 10. The whole grid is stored
#
# The full grid is 7 values of n x {vanilla, HER} x {UVFA, HAR, MLP} x 3 seeds, for two presets:
# 252 runs, all stored. Failing UVFA cells were the expensive part (all 3000 iterations, at up to
# about 1 s each on one CPU core with the default settings at n = 50). If you delete some of the
# files, the cell below lists what is missing, and `bitflip sweep` with the commands in
# `results/README.md` fills it in, skipping what is stored.

# %%
missing = missing_cells(RESULTS)
total_missing = sum(len(s) for cells in missing.values() for _, s in cells)
print(f"{252 - total_missing} of 252 runs stored, {total_missing} missing")
assert total_missing == 0, "the repository stores every run of the grid"
for (preset, method), cells in missing.items():
    print(f"  {preset:8s} {method:13s} n = {', '.join(str(n) + ('' if len(s) == 3 else f' (seeds {s})') for n, s in cells)}")

# %% [markdown]
# ## Summary
#
# * Results of long experiments belong on disk, next to the exact configuration that made
#   them, and a sweep should be resumable: `bitflip sweep` writes one JSON file per run and
#   skips what is stored; `bitflip table` renders the table you saw.
# * Under its own settings, the write-up's central claim holds here: HER with its handcrafted
#   architecture solves n = 20-50 in a few hundred iterations, within a factor of two of its
#   numbers. Its strict success criterion (100 perfect evaluations in a row) turns two
#   near-perfect seeds into "fails".
# * With this course's settings (HER `future`, more gradient steps, faster Polyak averaging,
#   gamma near 1) the same architecture needs a handful of iterations, at every n up to 50.
# * Vanilla HAR is seed-dependent rather than failing from n = 30: whether a seed solves it in
#   a few iterations, in hundreds, or never, depends mostly on where its initial network
#   starts. One run per cell cannot show that; several seeds can.
# * HAR's inductive bias makes n almost irrelevant: a network trained at n = 20 is optimal,
#   unchanged, at n = 1024. Trained from scratch at n = 1024 it needs a replay buffer that holds
#   many of its 82,000-transition iterations (2^20 instead of 2^15); with that and a decaying
#   learning rate, seeds 0, 1 and 2 are solved at iterations 95, 166 and 83.
# * The generic networks (UVFA, MLP) are where the hard open problem lies, and they are the
#   expensive cells of the grid (all 252 runs are stored; section 10). With this course's
#   settings HER-UVFA solves n = 20, the write-up's first failure. The MLP at n = 50 needs more
#   computation per iteration and a decaying learning rate to get to 0.95 within 1000
#   iterations, 0.97-0.98 with twice the batch again (not yet "solved": the last few percent
#   come slowly), and the 128-step, batch-1024 recipe makes no progress at all at n = 100.
#
# **Exercises.** There is no new exercise for this chapter; reproduce a cell yourself instead:
# pick one above, run it with a seed the table does not have into a folder of your own (for
# example `bitflip sweep --preset writeup --arch har --her preset --n 20 --seeds 3 --out
# my_results`), and check whether your seed agrees with the three stored ones. The building
# blocks it exercises are those of `ex03_td_target`, `ex04_polyak`, `ex05_her_future` and
# `ex06_har`.
