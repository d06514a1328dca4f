"""What chapters 3 to 6 say about the runs stored with the course (results/), one test per claim.

The chapters read these runs and show them (with the command that made them); the claims their
prose makes about them are checked here, with the chapter's numbers, so that a rerun sweep that
no longer supports a sentence fails the build (chapter 7's claims are in test_stored_claims.py).
"""
from __future__ import annotations

import functools
import statistics
from pathlib import Path

from bitflip_lib.lab.runs import StoredRun, load_runs

RESULTS = Path(__file__).resolve().parent.parent / "results"


@functools.cache
def vanilla_uvfa(n: int) -> tuple[StoredRun, ...]:
    """Chapter 3's long runs: vanilla UVFA with the default preset, seeds 0-2, 3000 iterations."""
    return tuple(load_runs(RESULTS / "default", arch="uvfa", her="none", n=n, overrides={}))


def test_chapter_3_stored_long_runs_are_three_seeds_of_3000_iterations():
    for n in (5, 10, 15, 20):
        runs = vanilla_uvfa(n)
        assert sorted(r.seed for r in runs) == [0, 1, 2], n
        assert all(r.max_iterations == 3000 for r in runs), n


def test_chapter_3_vanilla_uvfa_solves_n5_at_74_to_103_and_n10_at_818_to_919_median_824():
    n5 = sorted(r.solved_at for r in vanilla_uvfa(5))
    n10 = sorted(r.solved_at for r in vanilla_uvfa(10))
    assert n5 == [74, 96, 103]
    assert n10 == [818, 824, 919] and statistics.median(n10) == 824


def test_chapter_3_vanilla_uvfa_at_n15_and_n20_gets_at_most_4_of_1024_test_agents_home():
    for n in (15, 20):
        for run in vanilla_uvfa(n):
            assert not run.solved and run.iterations == 3000, (n, run.seed)
            assert run.best_success <= 4 / 1024, (n, run.seed, run.best_success)
    assert max(r.best_success for n in (15, 20) for r in vanilla_uvfa(n)) == 4 / 1024  # "0.004"


def test_chapter_3_a_failing_run_takes_15_to_25_minutes_on_one_core():
    for n in (15, 20):
        for run in vanilla_uvfa(n):
            minutes = 3000 * run.seconds_per_iteration / 60
            assert 14 <= minutes <= 25, (n, run.seed, minutes)


# ---- chapter 4 ------------------------------------------------------------------------------------
def test_chapter_4_at_n10_seed0_vanilla_mlp_needs_about_770_iterations_her_264():
    def solved_at(her: str) -> int:
        (run,) = load_runs(RESULTS / "default", arch="mlp", her=her, n=10, seed=0, overrides={})
        return run.solved_at

    assert 760 <= solved_at("none") <= 780 and solved_at("future") == 264

