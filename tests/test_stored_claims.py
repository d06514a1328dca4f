"""What the course says about its stored runs (results/), one test per claim.

These were the asserts of chapter 7 on stored data; they moved here so that the chapter can
teach and the claims still fail the build the moment a stored file stops supporting them. Each
test is named after the claim it checks and keeps the chapter's numbers and strength exactly.
The numbers themselves are printed, from the files, in results/README.md.
"""
from __future__ import annotations

import functools
import math
import statistics
from pathlib import Path

import pytest

from bitflip_lib.lab.runs import StoredRun, describe_overrides, load_runs
from bitflip_lib.lab.table1 import (
    TABLE_NS,
    WRITEUP_CELLS,
    Cell,
    comparison,
    load_grid,
    missing_runs,
    table_cells,
    writeup_iterations,
)

RESULTS = Path(__file__).resolve().parent.parent / "results"
BEYOND = RESULTS / "beyond"
BIG = 2**20


# --------------------------------------------------------------------------------------------
# Reading the stored runs
# --------------------------------------------------------------------------------------------
@functools.cache
def grid(preset: str) -> tuple[StoredRun, ...]:
    return tuple(load_grid(RESULTS, preset))


@functools.cache
def cells(preset: str) -> dict[tuple[str, int], Cell]:
    return table_cells(grid(preset))


def cell(preset: str, method: str, n: int) -> Cell:
    return cells(preset)[method, n]


def runs(preset: str, method: str, *ns: int) -> list[StoredRun]:
    """The stored runs (one per seed) of a method at the given n."""
    return [r for r in grid(preset) if r.method == method and r.n in ns]


def success(run: StoredRun) -> list[float]:
    return run.columns["success_rate"]


def distance(run: StoredRun) -> list[float]:
    return run.columns["mean_distance"]


def tenth_means(values: list[float]) -> list[float]:
    """The mean of each tenth of a thinned learning curve (100 points: 10 means of 10)."""
    tenth = len(values) // 10
    return [sum(values[i * tenth:(i + 1) * tenth]) / tenth for i in range(10)]


@functools.cache
def ablation(n: int) -> tuple[StoredRun, ...]:
    """The seed-0 HER-MLP runs at n: the study's folder and the default-settings grid cell."""
    found = load_runs(BEYOND / f"mlp_n{n}", seed=0)
    found += [r for r in grid("default") if r.method == "HER-MLP" and r.n == n and r.seed == 0]
    return tuple(sorted(found, key=lambda r: (r.solved_at or 10**9, -(r.best_success or 0))))


def run_with(n: int, budget: int | None = None, **changes) -> StoredRun:
    """The stored seed-0 HER-MLP run at n whose settings differ from the default preset exactly by
    ``changes`` (and, if given, whose iteration budget was ``budget``)."""
    for r in ablation(n):
        overrides = {k: v for k, v in r.overrides.items() if k != "max_iterations"}
        if overrides == changes and budget in (None, r.max_iterations):
            return r
    raise AssertionError(f"no stored HER-MLP run at n = {n} with {changes}: see results/README.md")


HEAVY = dict(buffer_capacity=BIG, gamma=0.95, gradient_steps=128, batch_size=1024)
WIDE_BATCH = {**HEAVY, "batch_size": 2048}


def at30() -> dict[str, StoredRun]:
    return {"default": run_with(30), "buffer": run_with(30, buffer_capacity=BIG),
            "gamma95": run_with(30, buffer_capacity=BIG, gamma=0.95),
            "gamma90": run_with(30, buffer_capacity=BIG, gamma=0.9),
            "steps128": run_with(30, buffer_capacity=BIG, gamma=0.95, gradient_steps=128),
            "batch1024": run_with(30, buffer_capacity=BIG, gamma=0.95, batch_size=1024),
            "double": run_with(30, buffer_capacity=BIG, gamma=0.95, double_dqn=True),
            "wide": run_with(30, buffer_capacity=BIG, gamma=0.95, hidden=[512])}


def solved30() -> dict[str, int | None]:
    return {k: r.solved_at for k, r in at30().items()}


def at50_batch() -> StoredRun:
    return run_with(50, 1000, **HEAVY)


def at50_cosine() -> StoredRun:
    return run_with(50, 1000, **HEAVY, lr_end=0.0001)


def big_batch() -> list[StoredRun]:
    """The two seed-0 batch-2048 runs with a cosine rate (to 1e-4 and to 1e-5)."""
    return [run_with(50, 1000, **WIDE_BATCH, lr_end=0.0001), run_with(50, 1000, **WIDE_BATCH, lr_end=1e-05)]


def seed1_n50() -> list[StoredRun]:
    return load_runs(BEYOND / "mlp_n50", seed=1)


def big_batch_story_runs() -> list[StoredRun]:
    """The runs the batch-2048 story is told of: both seed-0 runs and the seed-1 run."""
    return big_batch() + seed1_n50()


def screen_label(run: StoredRun) -> str:
    changes = {key: v for key, v in run.overrides.items() if key not in ("buffer_capacity", "gamma", "max_iterations")}
    return ", ".join(filter(None, [describe_overrides(changes) if changes else "",
                                   f"k = {run.k}" if run.k != 4 else ""])) or "nothing else (the baseline)"


def screen() -> list[StoredRun]:
    return sorted(load_runs(BEYOND / "mlp_n50_screen"), key=lambda r: r.mean_distance)


def har1024() -> dict[int, StoredRun]:
    """HER-HAR from scratch at n = 1024 with a 2^20 buffer and a cosine rate, by seed."""
    found = {r.seed: r for r in load_runs(BEYOND / "har_n1024") if "lr_end" in r.overrides}
    assert sorted(found) == [0, 1, 2], "results/beyond/har_n1024 should hold seeds 0, 1 and 2 (results/README.md)"
    return found


def har1024_buffer_only() -> StoredRun:
    found = [r for r in load_runs(BEYOND / "har_n1024") if "lr_end" not in r.overrides]
    assert len(found) == 1, "results/beyond/har_n1024 should hold one constant-rate run"
    return found[0]


def cosine_fraction(run: StoredRun, iteration: int) -> float:
    """The learning rate a run used at ``iteration``, as a fraction of its starting rate."""
    config, done = run.config, (iteration - 1) / run.config["max_iterations"]
    return (config["lr_end"] + (config["lr"] - config["lr_end"]) * (1 + math.cos(math.pi * done)) / 2) / config["lr"]


# --------------------------------------------------------------------------------------------
# The grid is stored
# --------------------------------------------------------------------------------------------
def test_the_first_reading_and_default_grids_are_complete_with_252_runs():
    missing = missing_runs(RESULTS, presets=("writeup_v1", "default"))
    assert sum(len(s) for cells_ in missing.values() for _, s in cells_) == 0, missing
    assert len(grid("writeup_v1")) + len(grid("default")) == 252


def test_every_one_of_the_288_grid_runs_is_stored_the_writeup_grid_in_its_sixteen_cells():
    missing = missing_runs(RESULTS)
    assert sum(len(s) for cells_ in missing.values() for _, s in cells_) == 0, missing
    stored = {(r.method, r.n) for r in grid("writeup")}
    assert stored == set(WRITEUP_CELLS) and len(grid("writeup")) == 36, stored
    assert sum(len(grid(p)) for p in ("writeup", "writeup_v1", "default")) == 288


def test_first_reading_grid_is_complete_with_126_runs():
    assert len(grid("writeup_v1")) == 126 and not any(p == "writeup_v1" for p, _ in missing_runs(RESULTS))


# --------------------------------------------------------------------------------------------
# The write-up's code, rerun (results/writeup): the same moment as the write-up's counts
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [20, 30, 40, 50])
def test_writeup_code_her_har_every_seed_reaches_1_and_the_solved_median_is_within_a_factor_of_two(n):
    e, theirs = cell("writeup", "HER-HAR", n), writeup_iterations("HER-HAR", n)
    assert e.n_runs >= 1 and all(r.best_success == 1.0 for r in e.runs)
    assert theirs / 2 <= e.median_confirmed_at <= 2 * theirs, (n, e.confirmed_at, theirs)
    assert e.n_solved == e.n_runs or n == 50, (n, e.solved_at)


def test_writeup_code_her_har_unsolved_seeds_stay_at_0_99_or_above_in_their_second_half_but_not_all_1():
    unsolved = [r for r in runs("writeup", "HER-HAR", 20, 30, 40, 50) if not r.solved]
    for r in unsolved:
        late = success(r)[50:]
        assert r.iterations == 3000 and min(late) >= 0.99 and late.count(1.0) < len(late), r.name


def test_writeup_code_her_har_seeds_at_n40_differ_by_a_factor_of_four():
    done = cell("writeup", "HER-HAR", 40).confirmed_at
    assert len(done) == 3 and max(done) >= 3.5 * min(done), done


def test_writeup_code_vanilla_har_n20_seed0_never_succeeds_in_3000_iterations():
    run = cell("writeup", "Vanilla-HAR", 20).run(0)
    assert not run.solved and run.best_success == 0.0 and run.iterations == 3000


def test_writeup_code_vanilla_har_n20_is_a_lottery_another_seed_wins_later_than_the_writeup():
    e = cell("writeup", "Vanilla-HAR", 20)
    assert e.verdict == "mixed" and any(r.solved and r.confirmed_at > 484 for r in e.runs), e.confirmed_at


@pytest.mark.parametrize("n", [30, 40])
def test_writeup_code_vanilla_har_fails_from_n30_as_the_writeup_says_where_the_first_reading_solves(n):
    code, first = cell("writeup", "Vanilla-HAR", n), cell("writeup_v1", "Vanilla-HAR", n)
    assert code.verdict == "failed" and code.run(0).best_success == 0.0 and code.run(0).iterations == 3000
    assert first.verdict == "solved"


def test_writeup_code_the_verdicts_that_differ_are_the_lottery_and_a_near_perfect_seed():
    differ = {(r["method"], r["n"]) for r in comparison(cells("writeup")) if r["agree"] is False}
    assert ("Vanilla-HAR", 20) in differ and differ <= {("Vanilla-HAR", 20), ("HER-HAR", 50)}, differ


@pytest.mark.parametrize("method,n", [("HER-UVFA", 5), ("HER-UVFA", 10), ("HER-UVFA", 15), ("Vanilla-UVFA", 5),
                                      ("Vanilla-UVFA", 10)])
def test_writeup_code_uvfa_cells_it_solved_are_solved_within_a_factor_of_two(method, n):
    e, theirs = cell("writeup", method, n), writeup_iterations(method, n)
    assert e.n_solved == e.n_runs >= 1 and theirs / 2 <= e.median_confirmed_at <= 2 * theirs, (e.confirmed_at, theirs)


def test_default_settings_under_the_writeup_rule_need_fewer_iterations_and_seconds_and_start_the_streak_sooner():
    strict = table_cells(load_runs(BEYOND / "har_writeup_rule"))
    compared = 0
    for n in (20, 30, 40, 50):
        fast, code = strict.get(("HER-HAR", n)), cells("writeup").get(("HER-HAR", n))
        if fast is None:
            continue
        assert fast.n_solved == fast.n_runs and code.n_solved >= 1
        assert fast.median_confirmed_at < code.median_confirmed_at
        # Gradient steps until the streak starts (32 per iteration against 5); the streak itself
        # is 100 iterations on both sides, which the default settings pay 32 steps each for.
        assert fast.median_solved_at * 32 < code.median_solved_at * 5
        assert statistics.median(r.wall_seconds for r in fast.runs) < statistics.median(r.wall_seconds for r in code.runs)
        assert fast.median_solved_at <= 10  # the streak starts within a handful of iterations
        compared += 1
    assert compared >= 1


# --------------------------------------------------------------------------------------------
# HAR under the write-up's settings
# --------------------------------------------------------------------------------------------
def test_her_har_writeup_settings_every_seed_reaches_success_1():
    her_har = runs("writeup_v1", "HER-HAR", *TABLE_NS)
    assert her_har and all(r.best_success == 1.0 for r in her_har)


@pytest.mark.parametrize("n", [20, 30, 40])
def test_her_har_writeup_settings_median_within_a_factor_of_two_of_the_writeup_at_n20_to_40(n):
    # Like with like: both count the iterations trained when the solved streak completed.
    e, theirs = cell("writeup_v1", "HER-HAR", n), writeup_iterations("HER-HAR", n)
    assert e.n_runs == 3 and theirs / 2 <= e.median_confirmed_at <= 2 * theirs, (n, e.median_confirmed_at, theirs)


def test_her_har_writeup_settings_only_n40_and_n50_fail_after_3000_iterations():
    unsolved = sorted((r for r in runs("writeup_v1", "HER-HAR", *TABLE_NS) if not r.solved), key=lambda r: r.n)
    assert [(r.n, r.iterations) for r in unsolved] == [(40, 3000), (50, 3000)], unsolved


def test_her_har_writeup_settings_unsolved_seeds_stay_at_0_998_or_above_in_their_second_half_but_not_all_1():
    for r in (r for r in runs("writeup_v1", "HER-HAR", *TABLE_NS) if not r.solved):
        late = success(r)[50:]
        assert min(late) >= 0.998 and late.count(1.0) < len(late), r.name


def test_her_har_writeup_settings_seed2_solves_within_16_iterations_up_to_n40_and_89_at_n50():
    seed2 = {r.n: r.solved_at for r in runs("writeup_v1", "HER-HAR", *TABLE_NS) if r.seed == 2}
    assert len(seed2) == 7 and all(seed2[n] <= 16 for n in TABLE_NS if n <= 40) and seed2[50] <= 89, seed2


def test_her_har_writeup_settings_seed2_is_the_fastest_seed_at_every_n():
    her_har = runs("writeup_v1", "HER-HAR", *TABLE_NS)
    seed2 = {r.n: r.solved_at for r in her_har if r.seed == 2}
    assert all(r.solved_at is None or r.solved_at >= seed2[r.n] for r in her_har)


def test_her_har_writeup_settings_seed2_is_perfect_at_its_first_evaluation_up_to_n20():
    assert all(success(r)[0] == 1.0 and r.solved_at == 1 for r in runs("writeup_v1", "HER-HAR", *TABLE_NS)
               if r.seed == 2 and r.n <= 20)


def test_at_least_three_cells_have_a_seed_solved_within_10_iterations_beside_one_needing_over_100():
    lucky = [(p, e.method, e.n) for p in ("writeup_v1", "default") for e in cells(p).values()
             if e.solved_at and e.solved_at[0] <= 10 and e.solved_at[-1] > 100]
    assert len(lucky) >= 3, lucky


@pytest.mark.parametrize("n", TABLE_NS)
def test_vanilla_har_writeup_settings_solves_n5_to_40_on_three_seeds_and_n50_on_two(n):
    e = cell("writeup_v1", "Vanilla-HAR", n)
    assert e.n_runs == 3 and e.n_solved == (3 if n <= 40 else 2), (n, e.solved_at)


def test_vanilla_har_writeup_settings_slowest_solve_is_at_iteration_1414():
    assert max(r.solved_at for r in runs("writeup_v1", "Vanilla-HAR", *TABLE_NS) if r.solved) == 1414


def test_vanilla_har_writeup_settings_one_unsolved_seed_reaches_1_and_stays_at_0_98_or_above_in_its_second_half():
    unsolved = [r for r in runs("writeup_v1", "Vanilla-HAR", *TABLE_NS) if not r.solved]
    assert len(unsolved) == 1 and unsolved[0].best_success == 1.0 and min(success(unsolved[0])[50:]) >= 0.98


# --------------------------------------------------------------------------------------------
# HAR under this course's default settings
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", TABLE_NS)
def test_her_har_default_settings_solves_every_n_on_three_seeds_with_a_median_of_at_most_7(n):
    e = cell("default", "HER-HAR", n)
    assert e.n_runs == 3 and e.n_solved == 3 and e.median_solved_at <= 7, (n, e.solved_at)


def test_her_har_default_settings_success_dips_to_0_05_to_0_6_then_is_solved_by_iteration_7_from_n30():
    for r in runs("default", "HER-HAR", 30, 40, 50):
        assert 0.05 <= min(success(r)[:3]) <= 0.6 and r.solved_at <= 7, r.name


@pytest.mark.parametrize("n", [5, 10, 15, 20, 30])
def test_vanilla_har_default_settings_solves_n5_to_30_on_three_seeds(n):
    e = cell("default", "Vanilla-HAR", n)
    assert e.n_runs == 3 and e.n_solved == 3, (n, e.solved_at)


def test_vanilla_har_default_settings_n40_is_solved_by_two_seeds_and_the_third_never_succeeds_in_3000():
    e40 = cell("default", "Vanilla-HAR", 40)
    failed40 = [r for r in e40.runs if not r.solved]
    assert e40.n_runs == 3 and e40.n_solved == 2 and len(failed40) == 1
    assert failed40[0].best_success == 0.0 and failed40[0].iterations == 3000


def test_vanilla_har_default_settings_more_than_half_of_the_runs_are_solved_within_3_iterations():
    vanilla = runs("default", "Vanilla-HAR", *TABLE_NS)
    quick_ones = [r for r in vanilla if r.solved and r.solved_at <= 3]
    assert len(quick_ones) > len(vanilla) / 2, len(quick_ones)


def test_vanilla_har_default_settings_n50_is_solved_at_9_10_and_405():
    e50 = cell("default", "Vanilla-HAR", 50)
    assert e50.n_runs == 3 and e50.n_solved == 3 and e50.solved_at == [9, 10, 405], e50.solved_at


@pytest.mark.parametrize("n", [15, 20, 30, 40, 50])
def test_vanilla_har_default_settings_seed1_starts_perfect_then_collapses_to_0_01_or_less_from_n15(n):
    c = success(cell("default", "Vanilla-HAR", n).run(1))
    assert c[0] == 1.0 and min(c[1:4]) <= 0.01, (n, c[:4])


def test_vanilla_har_default_settings_seed1_recovers_at_144_362_257_and_405_at_n20_to_50():
    assert [cell("default", "Vanilla-HAR", n).run(1).solved_at for n in (20, 30, 40, 50)] == [144, 362, 257, 405]


def test_vanilla_har_default_settings_seed2_never_succeeds_at_n40():
    assert cell("default", "Vanilla-HAR", 40).run(2).best_success == 0.0


# --------------------------------------------------------------------------------------------
# UVFA
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, n", [("HER-UVFA", 5), ("HER-UVFA", 10), ("HER-UVFA", 15), ("Vanilla-UVFA", 5),
                                       ("Vanilla-UVFA", 10)])
def test_uvfa_writeup_settings_reproduces_the_writeup_s_solved_cells_within_1_5_times_its_count(method, n):
    e = cell("writeup_v1", method, n)  # like with like: iterations trained when the streak completed
    assert e.n_runs == 3 and e.n_solved == 3 and e.median_confirmed_at <= 1.5 * writeup_iterations(method, n), (method, n)


def writeup_uvfa_failures() -> list[StoredRun]:
    return [r for r in grid("writeup_v1")
            if (r.method == "Vanilla-UVFA" and r.n >= 15) or (r.method, r.n) == ("HER-UVFA", 20)]


def test_uvfa_writeup_settings_failures_at_vanilla_n15_up_and_her_n20_run_all_3000_iterations():
    w_fail = writeup_uvfa_failures()
    assert len(w_fail) >= 15 and all(not r.solved and r.iterations == 3000 for r in w_fail)


def test_vanilla_uvfa_writeup_settings_stays_below_1_percent_from_n15():
    assert all(r.best_success < 0.01 for r in writeup_uvfa_failures() if r.method == "Vanilla-UVFA")


def test_her_uvfa_writeup_settings_n20_ends_between_0_2_and_0_99_still_climbing():
    assert all(0.2 <= r.success_rate < 0.99 for r in writeup_uvfa_failures() if r.method == "HER-UVFA")


@pytest.mark.parametrize("n, her_distance", [(30, 10), (40, 15), (50, 23)])
def test_her_uvfa_writeup_settings_fails_below_2_percent_at_n30_to_50_but_ends_closer_than_10_15_23_bits(n, her_distance):
    her_uvfa = runs("writeup_v1", "HER-UVFA", n)
    assert len(her_uvfa) == 3 and all(not r.solved and r.best_success < 0.02 and r.mean_distance < her_distance
                                      for r in her_uvfa), n


@pytest.mark.parametrize("n", [40, 50])
def test_vanilla_uvfa_writeup_settings_ends_about_n_over_2_bits_away_at_n40_and_n50(n):
    vanilla_uvfa = runs("writeup_v1", "Vanilla-UVFA", n)
    assert len(vanilla_uvfa) == 3 and all(r.mean_distance > n / 2 - 1 for r in vanilla_uvfa), n


def test_vanilla_uvfa_default_settings_fails_below_1_percent_in_3000_iterations_at_n15_20_and_30():
    d_fail = runs("default", "Vanilla-UVFA", 15, 20, 30)
    assert len(d_fail) == 9 and all(r.best_success < 0.01 and r.iterations == 3000 for r in d_fail)


def test_vanilla_uvfa_default_settings_n30_ends_more_than_14_bits_away():
    assert all(r.mean_distance > 14 for r in runs("default", "Vanilla-UVFA", 30))


def test_her_uvfa_default_settings_solves_n15_on_every_seed_in_under_half_the_writeup_s_2591():
    e = cell("default", "HER-UVFA", 15)  # like with like: iterations trained when the streak completed
    assert e.n_solved == e.n_runs >= 2 and max(e.confirmed_at) < writeup_iterations("HER-UVFA", 15) / 2, e.confirmed_at


def test_her_uvfa_default_settings_solves_n20_on_all_three_seeds_within_3000():
    e = cell("default", "HER-UVFA", 20)
    assert e.n_runs == 3 and e.n_solved == 3 and max(e.solved_at) < 3000, e.solved_at


def test_her_uvfa_default_settings_n30_unsolved_in_3000_with_best_0_44_to_0_57_and_distance_1_5_to_2_4():
    her_uvfa30 = runs("default", "HER-UVFA", 30)
    assert len(her_uvfa30) == 3 and all(not r.solved and r.iterations == 3000 and 0.44 <= r.best_success <= 0.57
                                        and 1.5 <= r.mean_distance <= 2.4 for r in her_uvfa30)


def test_her_uvfa_default_settings_n30_is_below_0_05_for_its_first_half_and_reaches_0_4_in_its_last_tenth():
    for r in runs("default", "HER-UVFA", 30):
        curve = success(r)
        assert max(curve[: len(curve) // 2]) < 0.05 and max(curve[-len(curve) // 10:]) >= 0.4, r.name


def test_her_uvfa_default_settings_n30_passes_1_percent_between_iterations_1400_and_1700():
    for r in runs("default", "HER-UVFA", 30):
        assert 1400 <= r.first_at(0.01) <= 1700, (r.name, r.first_at(0.01))


def test_her_uvfa_default_settings_n40_has_three_seeds_below_0_1_percent_ending_13_55_to_13_75_bits_away():
    her_uvfa40 = runs("default", "HER-UVFA", 40)
    assert len(her_uvfa40) == 3, "expected 3 stored default-settings HER-UVFA runs at n = 40"
    for r in her_uvfa40:
        assert not r.solved and r.best_success < 0.001 and abs(r.mean_distance - 13.65) < 0.1, r.name


def test_her_uvfa_default_settings_n40_starts_more_than_19_5_bits_away_over_its_first_tenth():
    for r in runs("default", "HER-UVFA", 40):
        assert min(distance(r)[:len(distance(r)) // 10]) > 19.5, r.name


def test_her_uvfa_default_settings_n40_distance_falls_half_a_bit_or_more_per_tenth_over_its_second_half():
    for r in runs("default", "HER-UVFA", 40):
        means = tenth_means(distance(r))
        assert all(later < earlier - 0.5 for earlier, later in zip(means[4:], means[5:])), (r.name, means)


def test_her_uvfa_default_settings_n50_three_seeds_and_no_evaluation_agent_ever_succeeds():
    her_uvfa50 = runs("default", "HER-UVFA", 50)
    assert len(her_uvfa50) == 3, "expected 3 stored default-settings HER-UVFA runs at n = 50"
    for r in her_uvfa50:
        assert not r.solved and r.best_success == 0 and tenth_means(distance(r))[0] > 25, r.name


def test_her_uvfa_default_settings_n50_distance_ends_1_5_bits_below_its_start_and_under_24():
    for r in runs("default", "HER-UVFA", 50):
        means = tenth_means(distance(r))
        assert means[-1] < means[0] - 1.5 and r.mean_distance < 24, (r.name, means)


def test_her_uvfa_default_settings_n50_distance_falls_every_tenth_over_its_second_half():
    for r in runs("default", "HER-UVFA", 50):
        means = tenth_means(distance(r))
        assert all(later < earlier for earlier, later in zip(means[4:], means[5:])), (r.name, means)


def test_her_uvfa_default_settings_n50_distance_falls_0_3_to_0_5_bits_per_tenth_over_the_last_three():
    for r in runs("default", "HER-UVFA", 50):
        means = tenth_means(distance(r))
        assert all(0.3 <= earlier - later <= 0.5 for earlier, later in zip(means[6:], means[7:])), (r.name, means)


def test_vanilla_uvfa_default_settings_n40_stays_below_1_percent_and_more_than_19_bits_away():
    vanilla_uvfa40 = runs("default", "Vanilla-UVFA", 40)
    assert len(vanilla_uvfa40) == 3 and all(r.best_success < 0.01 and r.mean_distance > 19 for r in vanilla_uvfa40)


def test_vanilla_uvfa_default_settings_n50_never_succeeds_and_never_gets_below_24_5_bits():
    vanilla_uvfa50 = runs("default", "Vanilla-UVFA", 50)
    assert len(vanilla_uvfa50) == 3, "expected 3 stored default-settings vanilla UVFA runs at n = 50"
    assert all(r.best_success == 0 and min(distance(r)) > 24.5 for r in vanilla_uvfa50)


# --------------------------------------------------------------------------------------------
# The HER paper's MLP in the grid
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [5, 10, 15, 20, 30, 40])
def test_her_mlp_default_settings_solves_n5_to_40_on_three_seeds(n):
    e = cell("default", "HER-MLP", n)
    assert e.n_runs == 3 and e.n_solved == 3, (n, e.solved_at)


def test_her_mlp_default_settings_n30_median_is_above_1000():
    assert cell("default", "HER-MLP", 30).median_solved_at > 1000


def test_her_mlp_default_settings_n40_seed0_is_solved_at_2380():
    assert cell("default", "HER-MLP", 40).run(0).solved_at == 2380


def test_her_mlp_default_settings_n40_median_is_2427_on_three_seeds():
    e40 = cell("default", "HER-MLP", 40)
    assert e40.n_runs == 3 and e40.n_solved == 3 and e40.median_solved_at == 2427, e40.solved_at


def test_her_mlp_default_settings_n50_every_seed_stays_below_1_percent():
    seed0 = cell("default", "HER-MLP", 50).run(0)
    assert not seed0.solved and seed0.best_success < 0.01
    assert all(not r.solved and r.best_success < 0.01 for r in runs("default", "HER-MLP", 50))


@pytest.mark.parametrize("preset", ["default", "writeup_v1"])
def test_vanilla_mlp_stays_below_1_percent_for_3000_iterations_from_n15_and_solves_n10(preset):
    hopeless = [r for r in grid(preset) if r.method == "Vanilla-MLP" and r.n >= 15]
    assert len(hopeless) >= 6 and all(r.best_success < 0.01 and r.iterations == 3000 for r in hopeless), preset
    assert cell(preset, "Vanilla-MLP", 10).n_solved == 3


def test_her_mlp_writeup_settings_n15_is_solved_by_two_seeds_and_every_seed_ends_at_0_99_or_above():
    e = cell("writeup_v1", "HER-MLP", 15)
    assert e.n_solved == 2 and min(e.run(s).success_rate for s in (0, 1, 2)) >= 0.99


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_her_mlp_writeup_settings_n20_reaches_1_and_stays_above_0_95_in_its_second_half_unsolved(seed):
    r = cell("writeup_v1", "HER-MLP", 20).run(seed)
    assert not r.solved and r.best_success == 1.0 and min(success(r)[50:]) > 0.95, r.name


def test_her_mlp_writeup_settings_stays_below_1_percent_from_n30():
    late = runs("writeup_v1", "HER-MLP", 30, 40, 50)
    assert len(late) >= 6 and all(r.best_success < 0.01 for r in late)


# --------------------------------------------------------------------------------------------
# Beyond the write-up: HAR at n = 1024 (results/beyond/har_n20_transfer, har_n1024)
# --------------------------------------------------------------------------------------------
def test_har_trained_at_n20_is_optimal_unchanged_at_n50_100_200_500_and_1024():
    found = load_runs(BEYOND / "har_n20_transfer")
    assert len(found) == 1, "results/beyond/har_n20_transfer should hold one run"
    transfer = found[0]
    assert transfer.n == 20 and transfer.solved_at is not None
    for n in (50, 100, 200, 500, 1024):
        ev = transfer.evaluated_at[n]
        assert ev["success_rate"] == 1.0, (n, ev)
        assert abs(ev["mean_steps"] - ev["mean_start_distance"]) < 1e-9, (n, ev)


def test_her_har_n1024_runs_use_a_2_20_buffer_and_a_cosine_rate_to_1e_5_and_end_at_0_99_or_above():
    for seed, run in har1024().items():
        assert run.n == 1024 and run.config["buffer_capacity"] == 2**20 and run.config["lr_end"] == 1e-5, seed
        assert run.success_rate >= 0.99, run.summary


def test_her_har_n1024_solved_on_all_three_seeds_at_95_166_83():
    assert {seed: run.solved_at for seed, run in har1024().items()} == {0: 95, 1: 166, 2: 83}


def test_her_har_n1024_buffer_only_is_perfect_seven_times_between_iterations_85_and_119_but_not_solved():
    run = har1024_buffer_only()
    perfect = [i for i, v in zip(*run.curve("success_rate")) if v == 1.0 and i >= 85]
    assert len(perfect) == 7 and max(perfect) <= 119 and not run.solved_at, perfect


def test_her_har_n1024_buffer_only_falls_back_to_100_bits_or_more_between_iterations_85_and_119():
    run = har1024_buffer_only()
    assert max(d for i, d in zip(*run.curve("mean_distance")) if 85 <= i <= 119) >= 100


def test_her_har_n1024_seed0_swings_between_perfect_and_200_bits_or_more_before_it_is_solved():
    run = har1024()[0]
    before = [(v, d) for i, v, d in zip(run.columns["iteration"], success(run), distance(run)) if i < run.solved_at]
    assert any(v == 1.0 for v, _ in before) and any(d >= 200 for _, d in before)


def test_her_har_n1024_rate_is_about_halved_when_seed0_is_solved_and_below_a_tenth_when_seed1_is():
    scratch = har1024()
    assert 0.4 < cosine_fraction(scratch[0], scratch[0].solved_at) < 0.6
    assert cosine_fraction(scratch[1], scratch[1].solved_at) < 0.1


# --------------------------------------------------------------------------------------------
# Beyond the write-up: HER-MLP at n = 30 (results/beyond/mlp_n30)
# --------------------------------------------------------------------------------------------
def test_her_mlp_n30_a_2_20_buffer_solves_sooner_than_the_default():
    s = solved30()
    assert s["buffer"] < s["default"], s


def test_her_mlp_n30_four_times_the_batch_beats_four_times_the_steps_which_beats_neither():
    s = solved30()
    assert s["batch1024"] < s["steps128"] < s["gamma95"], s


def test_her_mlp_n30_gamma_0_95_is_no_slower_than_0_98_and_gamma_0_9_is_not_solved():
    s = solved30()
    assert s["gamma95"] <= s["buffer"] and s["gamma90"] is None, s


def test_her_mlp_n30_gamma_0_9_stalls_between_0_8_and_0_99():
    assert 0.8 <= at30()["gamma90"].best_success < 0.99


@pytest.mark.parametrize("key", ["double", "wide"])
def test_her_mlp_n30_double_dqn_and_a_512_unit_layer_are_within_5_percent_of_gamma_0_95(key):
    s = solved30()
    assert abs(s[key] - s["gamma95"]) <= 0.05 * s["gamma95"], (key, s[key])


# --------------------------------------------------------------------------------------------
# Beyond the write-up: HER-MLP at n = 50 (results/beyond/mlp_n50, mlp_n50_screen) and n = 100
# --------------------------------------------------------------------------------------------
def test_her_mlp_n50_a_2_20_buffer_alone_or_with_double_dqn_never_succeeds_in_1500_iterations():
    at50_plain = [run_with(50, buffer_capacity=BIG), run_with(50, buffer_capacity=BIG, double_dqn=True)]
    assert all(r.best_success == 0.0 and r.iterations == 1500 and r.mean_distance > 15 for r in at50_plain)


def test_her_mlp_n50_gamma_0_95_and_128_steps_reaches_0_5_but_not_0_99():
    at50_steps = run_with(50, buffer_capacity=BIG, gamma=0.95, gradient_steps=128)
    assert not at50_steps.solved and 0.5 <= at50_steps.best_success < 0.99


def test_her_mlp_n50_128_steps_of_batch_1024_reach_0_8_within_1000_iterations():
    r = at50_batch()
    assert not r.solved and r.iterations == 1000 and r.best_success >= 0.8


def test_her_mlp_n50_128_steps_of_batch_1024_over_2000_iterations_peak_between_0_9_and_0_99():
    at50_long = run_with(50, 2000, **HEAVY)
    assert not at50_long.solved and 0.9 <= at50_long.best_success < 0.99


def test_her_mlp_n50_128_steps_of_batch_1024_over_2000_iterations_end_between_0_85_and_0_99():
    assert 0.85 <= success(run_with(50, 2000, **HEAVY))[-1] < 0.99


def test_her_mlp_n50_256_steps_of_batch_1024_reach_0_3_but_stay_behind_128_steps():
    at50_more = run_with(50, 1000, **{**HEAVY, "gradient_steps": 256})
    assert not at50_more.solved and 0.3 <= at50_more.best_success < at50_batch().best_success


def test_her_mlp_n50_a_1024_unit_layer_stays_below_0_1_and_more_than_10_bits_away():
    at50_wide = run_with(50, 1000, **HEAVY, hidden=[1024])
    assert not at50_wide.solved and at50_wide.best_success < 0.1 and at50_wide.mean_distance > 10


def test_her_mlp_n50_a_cosine_rate_to_1e_4_reaches_0_9_unsolved():
    r = at50_cosine()
    assert not r.solved and r.best_success >= 0.9


def test_her_mlp_n50_a_cosine_rate_beats_the_constant_rate_by_0_05_and_ends_under_half_a_bit_away():
    r = at50_cosine()
    assert r.best_success >= at50_batch().best_success + 0.05 and r.mean_distance < 0.5


def test_her_mlp_n50_a_cosine_rate_is_still_rising_its_best_evaluation_is_its_last():
    r = at50_cosine()
    assert r.success_rate == r.best_success


def test_her_mlp_n50_a_cosine_rate_halves_the_distance_within_600_iterations():
    r = at50_cosine()
    assert min(d for i, d in zip(*r.curve("mean_distance")) if i <= 600) < 0.5 * 25


STORY = ["seed 0, cosine to 1e-4", "seed 0, cosine to 1e-5", "seed 1, cosine to 1e-4"]


@pytest.mark.parametrize("which", range(3), ids=STORY)
def test_her_mlp_n50_batch_2048_is_unsolved_after_1000_iterations_with_best_0_97_to_0_99(which):
    r = big_batch_story_runs()[which]
    assert not r.solved and r.iterations == 1000 and 0.97 <= r.best_success < 0.99, r.name


@pytest.mark.parametrize("which", range(3), ids=STORY)
def test_her_mlp_n50_batch_2048_reaches_0_5_50_and_0_9_100_iterations_before_batch_1024(which):
    r, cosine = big_batch_story_runs()[which], at50_cosine()
    assert r.first_at(0.5) <= cosine.first_at(0.5) - 50 and r.first_at(0.9) <= cosine.first_at(0.9) - 100


@pytest.mark.parametrize("which", range(3), ids=STORY)
def test_her_mlp_n50_batch_2048_is_at_0_85_by_iteration_800_then_creeps_at_most_0_11_higher(which):
    r = big_batch_story_runs()[which]
    assert r.success_by(800) >= 0.85 and r.best_success - r.success_by(800) <= 0.11


@pytest.mark.parametrize("which", range(3), ids=STORY)
def test_her_mlp_n50_batch_2048_failing_agents_end_6_to_10_bits_from_their_goals(which):
    r = big_batch_story_runs()[which]
    assert 6 <= r.mean_distance / (1 - r.success_rate) <= 10


def test_her_mlp_n50_batch_2048_with_double_dqn_stays_below_0_96():
    r = run_with(50, 1000, **WIDE_BATCH, lr_end=1e-05, double_dqn=True)
    assert not r.solved and r.best_success < 0.96


def test_her_mlp_n50_batch_2048_with_a_starting_rate_of_2e_3_stays_below_0_7():
    assert run_with(50, 1000, **WIDE_BATCH, lr=0.002, lr_end=0.0001).best_success < 0.7


def test_her_mlp_n50_batch_2048_with_polyak_0_01_stays_below_0_7_and_reaches_0_5_200_iterations_later():
    slow_target = run_with(50, 1000, **WIDE_BATCH, lr_end=1e-05, polyak=0.01)
    assert slow_target.best_success < 0.7 and slow_target.first_at(0.5) >= big_batch()[1].first_at(0.5) + 200


def test_her_mlp_n50_seed1_reruns_the_best_batch_2048_recipe_and_ends_between_0_96_and_0_99():
    seed1 = seed1_n50()
    assert len(seed1) == 1 and seed1[0].seed == 1, "results/beyond/mlp_n50 should hold one seed-1 run"
    assert seed1[0].overrides == big_batch()[0].overrides and 0.96 <= seed1[0].success_rate < 0.99


def test_mlp_n50_screen_has_eight_runs_or_more_none_above_1_percent_after_500_iterations():
    found = screen()
    assert len(found) >= 8 and all(r.iterations == 500 and r.best_success < 0.01 for r in found)


def test_mlp_n50_screen_only_a_1024_unit_layer_and_batch_1024_lead():
    found = screen()
    assert {screen_label(r) for r in found[:2]} == {"hidden [1024]", "batch 1024"}, [screen_label(r) for r in found]


@pytest.mark.parametrize("label", ["hidden [256, 256]", "lr 0.0003", "lr 0.003", "Polyak 0.01", "k = 8"])
def test_mlp_n50_screen_other_changes_end_no_more_than_half_a_bit_ahead_of_the_baseline(label):
    by_label = {screen_label(r): r for r in screen()}
    base = by_label["nothing else (the baseline)"].mean_distance
    assert by_label[label].mean_distance >= base - 0.5, (label, by_label[label].mean_distance, base)


def test_her_mlp_n100_never_succeeds_in_2000_iterations():
    found = load_runs(BEYOND / "mlp_n100")
    assert len(found) == 1, "results/beyond/mlp_n100 should hold one run"
    run100 = found[0]
    assert not run100.solved and run100.iterations == 2000 and run100.best_success == 0.0


def test_her_mlp_n100_greedy_agents_stay_more_than_47_5_bits_away_throughout():
    run100 = load_runs(BEYOND / "mlp_n100")[0]
    assert all(d > 0.95 * 50 for d in distance(run100))


# --------------------------------------------------------------------------------------------
# Beyond the write-up: a DeepSets network, not told the distance (results/beyond/deepsets)
# --------------------------------------------------------------------------------------------
@functools.cache
def deepsets(her: str) -> tuple[StoredRun, ...]:
    found = tuple(load_runs(BEYOND / "deepsets", arch="deepsets", her=her))
    assert found, f"no stored deepsets runs with HER {her!r} in results/beyond/deepsets"
    return found


def test_her_deepsets_is_solved_on_three_seeds_at_n_15_20_50_100_and_1024():
    solved = {(r.n, r.seed) for r in deepsets("future") if r.solved}
    assert solved >= {(n, seed) for n in (15, 20, 50, 100, 1024) for seed in (0, 1, 2)}, sorted(solved)


def test_her_deepsets_every_run_is_solved_within_a_few_iterations_at_most_10():
    assert all(r.solved and r.solved_at <= 10 for r in deepsets("future")), [(r.name, r.solved_at) for r in deepsets("future")]


def test_her_deepsets_every_run_takes_under_a_minute():
    assert all(r.wall_seconds < 60 for r in deepsets("future")), [(r.name, r.wall_seconds) for r in deepsets("future")]


def test_her_deepsets_at_n_1024_is_trained_from_scratch_with_the_default_2_15_buffer():
    big = [r for r in deepsets("future") if r.n == 1024]
    assert big and all("buffer_capacity" not in r.overrides and r.config["buffer_capacity"] == 2**15 for r in big)


def test_her_deepsets_trained_at_n_50_reaches_every_goal_in_the_fewest_flips_up_to_n_1024():
    (run,) = [r for r in deepsets("future") if r.evaluated_at]
    assert run.n == 50 and max(run.evaluated_at) == 1024
    for n, stats in run.evaluated_at.items():
        assert stats["success_rate"] == 1.0 and stats["mean_steps"] == stats["mean_start_distance"], (n, stats)


def test_vanilla_deepsets_is_a_lottery_some_seeds_solved_others_below_0_1_after_their_whole_budget():
    found = deepsets("none")
    assert any(r.solved for r in found)
    assert any(not r.solved and r.iterations == r.max_iterations and r.best_success < 0.1 for r in found)


# --------------------------------------------------------------------------------------------
# Beyond the write-up: why the last agents fail (results/beyond/tail) and the hindsight bound
# (results/beyond/mlp_n50_bound)
# --------------------------------------------------------------------------------------------
TAIL_CELL = "default_n50_mlp_future-k4_s0_33a56e9a"


@functools.cache
def tail_report() -> dict:
    import json

    return json.loads((BEYOND / "tail" / f"{TAIL_CELL}.json").read_text())


def test_tail_diagnosis_reran_the_stored_best_seed0_cell_exactly():
    report = tail_report()
    assert report["reproduced"] is True and report["iterations"] == 1000 and report["solved_at"] is None
    assert (BEYOND / "mlp_n50" / f"{TAIL_CELL}.json").is_file()


@pytest.mark.parametrize("network", ["online", "target"])
def test_tail_every_failing_agent_cycles_with_length_2_under_the_argmax_about_10_bits_away(network):
    argmax = tail_report()["networks"][network]["rules"]["argmax"]
    assert 0.95 <= argmax["success_rate"] < 0.99 and argmax["failures"] >= 10
    assert argmax["cycling"] == argmax["failures"] and argmax["cycle_length_mean"] == 2.0
    assert 8 <= argmax["cycle_distance_mean"] <= 12
    assert argmax["start_distance_failing"] > argmax["start_distance_all"]


@pytest.mark.parametrize("network", ["online", "target"])
def test_tail_a_tie_break_within_0_01_rescues_most_failures_epsilon_0_05_few(network):
    rules = tail_report()["networks"][network]["rules"]
    failing = rules["argmax"]["failures"]
    assert rules["tie_break 0.01"]["failures"] <= failing / 3
    assert rules["epsilon 0.05"]["failures"] >= failing * 0.6


def test_tail_wrong_flips_are_near_ties_a_few_percent_of_the_optimal_gap():
    assert tail_report()["networks"]["online"]["margins"]["margin_over_gap_median"] < 0.1


def test_tail_target_network_is_within_a_percent_of_the_online_one():
    nets = tail_report()["networks"]
    assert abs(nets["target"]["rules"]["argmax"]["success_rate"] - nets["online"]["rules"]["argmax"]["success_rate"]) <= 0.01


def test_tail_no_representation_collapse_srank_stays_above_170_of_256_with_under_20_dead_units():
    report = tail_report()
    ranks = [r["srank"] for r in report["rank"]]
    assert report["width"] == 256 and ranks[0] >= 230 and 170 <= min(ranks) <= 200
    assert max(r["dead_units"] for r in report["rank"]) < 20


@functools.cache
def bound_runs() -> tuple[StoredRun, ...]:
    return tuple(sorted(load_runs(BEYOND / "mlp_n50_bound"), key=lambda r: r.seed))


def test_hindsight_bound_n50_three_seeds_of_the_best_recipe_plus_the_bound_none_solved_in_1000():
    found = bound_runs()
    assert [r.seed for r in found] == [0, 1, 2]
    for r in found:
        assert r.overrides == {**big_batch()[0].overrides, "hindsight_bound": True}, r.name
        assert not r.solved and r.iterations == 1000 and 0.97 <= r.best_success < 1.0


def test_hindsight_bound_n50_best_success_at_or_above_every_run_without_it():
    without = max(r.best_success for r in big_batch_story_runs() if r.overrides.get("lr_end") == 0.0001)
    assert min(r.best_success for r in bound_runs()) >= without


def test_hindsight_bound_n50_seed0_reaches_0_5_later_seed1_ends_higher_than_without():
    with_bound = {r.seed: r for r in bound_runs()}
    plain0, plain1 = big_batch()[0], seed1_n50()[0]
    assert with_bound[0].first_at(0.5) >= plain0.first_at(0.5) + 50
    assert with_bound[1].success_rate >= plain1.success_rate + 0.01


@functools.cache
def gap_runs() -> tuple[StoredRun, ...]:
    return tuple(sorted(load_runs(BEYOND / "mlp_n50_gap"), key=lambda r: r.seed))


def test_action_gap_n50_is_the_bound_recipe_plus_advantage_learning_0_75():
    found = gap_runs()
    assert [r.seed for r in found] == [0, 1, 2]
    for r in found:
        assert r.overrides == {**bound_runs()[0].overrides, "action_gap": 0.75}, r.name


def test_action_gap_n50_solved_on_three_seeds_at_762_929_and_943():
    assert {r.seed: r.solved_at for r in gap_runs()} == {0: 762, 1: 929, 2: 943}


def test_action_gap_n50_reaches_0_5_and_0_9_earlier_than_the_bound_alone_by_the_told_margins():
    bound = {r.seed: r for r in bound_runs()}
    ahead = {r.seed: (bound[r.seed].first_at(0.5) - r.first_at(0.5), bound[r.seed].first_at(0.9) - r.first_at(0.9))
             for r in gap_runs()}
    assert ahead == {0: (278, 285), 1: (89, 59), 2: (180, 149)}


def test_action_gap_n50_costs_more_per_iteration_3_5_s_against_2_2_s():
    assert [round(r.wall_seconds / r.iterations, 1) for r in gap_runs()] == [3.5, 3.6, 3.5]
    assert [round(r.wall_seconds / r.iterations, 1) for r in bound_runs()[:2]] == [2.2, 2.2]


def gap_n100_run() -> StoredRun:
    found = load_runs(BEYOND / "mlp_n100_gap")
    assert len(found) == 1, "results/beyond/mlp_n100_gap should hold one run"
    return found[0]


def test_action_gap_n100_is_the_n100_recipe_with_batch_2048_the_bound_and_alpha_0_75():
    (old,) = load_runs(BEYOND / "mlp_n100")
    added = {"batch_size": 2048, "hindsight_bound": True, "action_gap": 0.75, "max_iterations": 1000, "max_seconds": 5400.0}
    assert gap_n100_run().overrides == {**old.overrides, **added}
    assert gap_n100_run().seed == 0


def test_action_gap_n100_stopped_by_its_90_minute_budget_at_979_iterations_with_no_goal_reached():
    run = gap_n100_run()
    assert run.stopped_by == "max_seconds" and run.iterations == 979
    assert not run.solved and run.best_success == 0.0


def test_action_gap_n100_mean_distance_falls_from_49_5_to_40_9_bits():
    distances = distance(gap_n100_run())
    assert [round(distances[0], 1), round(distances[-1], 1)] == [49.5, 40.9]


def window_means(run: StoredRun, starts: range, width: int = 100) -> list[float]:
    """The mean final distance over the evaluations in [start, start + width), one per start."""
    points = list(zip(*run.curve("mean_distance")))
    return [statistics.mean(d for i, d in points if start <= i < start + width) for start in starts]


def test_action_gap_n100_distance_falls_in_every_100_iteration_window_from_300_on():
    falling = window_means(gap_n100_run(), range(300, 1000, 100))
    assert all(later < earlier for earlier, later in zip(falling, falling[1:])), falling
    flat = window_means(gap_n100_run(), range(0, 300, 100))
    assert all(w > 50 for w in flat), flat  # before iteration 300: no closer than a random string
