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


# ---- chapter 7b: the solving recipe at n = 50, setting by setting --------------------------------
@functools.cache
def beyond(folder: str, n: int | None = None) -> dict[str, StoredRun]:
    """Seed-0 runs of a results/beyond folder by their description (2000-iteration reruns left out)."""
    from bitflip_lib.lab.runs import describe_overrides

    runs = load_runs(RESULTS / "beyond" / folder)
    return {describe_overrides(r.overrides): r for r in runs if r.seed == 0 and r.max_iterations != 2000}


def default_mlp(n: int) -> StoredRun:
    (run,) = load_runs(RESULTS / "default", arch="mlp", her="future", n=n, seed=0, overrides={})
    return run


def test_chapter_7b_buffer_holds_8_iterations_at_n50_and_solves_n30_at_956_against_1184():
    assert int(2**15 / (16 * 50 * 5)) == 8
    assert beyond("mlp_n30")["buffer 2^20"].solved_at == 956 and default_mlp(30).solved_at == 1184


def test_chapter_7b_gamma_095_made_no_real_difference_at_n30_and_was_never_compared_at_n50():
    n30 = beyond("mlp_n30")
    assert (n30["buffer 2^20, gamma 0.95"].solved_at, n30["buffer 2^20"].solved_at) == (901, 956)
    learned = [r for r in load_runs(RESULTS / "beyond" / "mlp_n50") if r.best_success > 0]
    assert learned and all(r.overrides.get("gamma") == 0.95 for r in learned)


def test_chapter_7b_gradient_steps_move_n50_from_0_to_060_and_n30_from_901_to_697():
    n50, n30 = beyond("mlp_n50"), beyond("mlp_n30")
    assert n50["buffer 2^20"].best_success == 0.0 and n50["buffer 2^20"].max_iterations == 1500
    screen = [r for r in load_runs(RESULTS / "beyond" / "mlp_n50_screen")
              if set(r.overrides) == {"buffer_capacity", "gamma", "max_iterations"} and r.k == 4]
    assert screen and all(r.best_success == 0.0 and r.max_iterations == 500 for r in screen)
    steps = n50["buffer 2^20, gamma 0.95, grad steps 128"]
    assert round(steps.best_success, 2) == 0.60 and steps.max_iterations == 1500
    assert n30["buffer 2^20, gamma 0.95, grad steps 128"].solved_at == 697


def test_chapter_7b_batch_and_cosine_rate_numbers():
    n50 = beyond("mlp_n50")
    base = "buffer 2^20, gamma 0.95, grad steps 128"
    assert round(n50[f"batch 1024, {base}"].best_success, 2) == 0.83
    assert round(n50[f"batch 1024, {base}, lr cosine to 0.0001"].best_success, 3) == 0.953
    assert round(n50[f"batch 2048, {base}, lr cosine to 0.0001"].best_success, 3) == 0.977
    assert round(n50[f"batch 2048, {base}, lr cosine to 1e-05"].best_success, 3) == 0.974
    assert all(n50[f"batch {b}, {base}{rate}"].max_iterations == 1000
               for b, rate in ((1024, ""), (1024, ", lr cosine to 0.0001"), (2048, ", lr cosine to 0.0001")))


def test_chapter_7b_hindsight_bound_best_successes_and_the_runs_without_it():
    bound = sorted(load_runs(RESULTS / "beyond" / "mlp_n50_bound"), key=lambda r: r.seed)
    assert [round(r.best_success, 3) for r in bound] == [0.980, 0.994, 0.987]
    assert not any(r.solved for r in bound)
    without = sorted((r for r in load_runs(RESULTS / "beyond" / "mlp_n50")
                      if r.overrides.get("batch_size") == 2048 and r.overrides.get("lr_end") == 1e-4
                      and "hindsight_bound" not in r.overrides and "lr" not in r.overrides),
                     key=lambda r: r.seed)
    assert [(r.seed, round(r.best_success, 3)) for r in without] == [(0, 0.977), (1, 0.980)]
