"""Graders of exercises 9 (REINFORCE with a baseline) and 10 (trajectory balance): they pass on the
solutions, fail on the stubs, and catch the classic mistakes."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bitflip_lib.grading import EXERCISES
from bitflip_lib.grading.notebook import load_graded
from bitflip_lib.grading.runner import run_exercise
from bitflip_lib.grading.stubs import exercise_text

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("ex09_reinforce", "ex10_trajectory_balance")


def _failed(name: str, include_slow: bool = False, **functions) -> set[str]:
    report = run_exercise(EXERCISES[name], functions, include_slow=include_slow)
    return {r.check for r in report.results if not r.passed}


@pytest.fixture(scope="module")
def solutions() -> dict:
    return {name: load_graded(ROOT / "solutions" / f"{name}.py") for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_exercise_is_generated(name):
    assert name in EXERCISES
    assert (ROOT / "exercises" / f"{name}.py").read_text() == exercise_text(ROOT / "solutions" / f"{name}.py")


@pytest.mark.parametrize("name", NAMES)
def test_every_check_passes_on_the_solution(name, solutions):
    report = run_exercise(EXERCISES[name], solutions[name], include_slow=True)
    assert report.passed, str(report)


@pytest.mark.parametrize("name", NAMES)
def test_every_check_fails_on_the_stub(name, tmp_path):
    stub = tmp_path / f"{name}.py"
    stub.write_text(exercise_text(ROOT / "solutions" / f"{name}.py"))
    report = run_exercise(EXERCISES[name], load_graded(stub), include_slow=True)
    assert report.results and not any(r.passed for r in report.results), str(report)
    assert all("NotImplementedError" in r.message for r in report.results), str(report)


# --- ex09: classic mistakes ----------------------------------------------------------------------


def _baseline(rewards, baseline):
    if isinstance(baseline, str):
        if baseline not in ("none", "mean"):
            raise ValueError(baseline)
        return rewards.mean() if baseline == "mean" else 0.0
    return torch.as_tensor(baseline)


def _checked(fn):
    def wrapped(step_log_probs, rewards, baseline="mean"):
        if rewards.shape != step_log_probs.shape[:1]:
            raise ValueError("shapes")
        return fn(step_log_probs, rewards, baseline)
    return wrapped


def test_ex09_catches_no_baseline_subtraction():
    wrong = _checked(lambda lp, r, b: (_baseline(r, b), -(r * lp.sum(1)).mean())[1])
    failed = _failed("ex09_reinforce", reinforce_surrogate=wrong)
    assert {"matches the library", "baseline subtracted"} <= failed


@pytest.mark.parametrize("reduce", ["mean over steps", "last step only"])
def test_ex09_catches_log_probs_not_summed(reduce):
    def log_pi(lp):
        return lp.mean(1) if reduce == "mean over steps" else lp[:, -1]

    wrong = _checked(lambda lp, r, b: -((r - _baseline(r, b)) * log_pi(lp)).mean())
    failed = _failed("ex09_reinforce", reinforce_surrogate=wrong)
    assert {"matches the library", "log-probabilities summed over the trajectory"} <= failed


def test_ex09_catches_the_wrong_sign():
    wrong = _checked(lambda lp, r, b: ((r - _baseline(r, b)) * lp.sum(1)).mean())
    assert "sign: descent raises rewarded strings" in _failed("ex09_reinforce", reinforce_surrogate=wrong)


# --- ex10: classic mistakes ----------------------------------------------------------------------


def _tb_checked(fn):
    def wrapped(log_Z, step_log_probs, log_rewards):
        if log_rewards.shape != step_log_probs.shape[:1]:
            raise ValueError("shapes")
        return fn(log_Z, step_log_probs, log_rewards)
    return wrapped


def test_ex10_catches_log_probs_not_summed():
    wrong = _tb_checked(lambda z, lp, lr: (z + lp.mean(1) - lr).pow(2).mean())
    failed = _failed("ex10_trajectory_balance", trajectory_balance_loss=wrong)
    assert {"by hand", "matches the library", "log-probabilities summed over the trajectory"} <= failed


@pytest.mark.parametrize("mistake", ["log Z ignored", "log Z detached"])
def test_ex10_catches_log_Z_not_learned(mistake):
    def residual_log_Z(z):
        return torch.zeros(()) if mistake == "log Z ignored" else z.detach()

    wrong = _tb_checked(lambda z, lp, lr: (residual_log_Z(z) + lp.sum(1) - lr).pow(2).mean())
    failed = _failed("ex10_trajectory_balance", include_slow=True, trajectory_balance_loss=wrong)
    assert "log Z is learned" in failed
    assert "a GFlowNet with it learns (end to end)" in failed


def test_ex10_says_what_the_square_of_the_mean_residual_computed():
    """Issue 30, item 2: the square of the mean residual was told to sum the log-probabilities over t,
    a cause it did not have."""
    wrong = _tb_checked(lambda z, lp, lr: (z + lp.sum(1) - lr).mean().pow(2))
    report = run_exercise(EXERCISES["ex10_trajectory_balance"], {"trajectory_balance_loss": wrong}, include_slow=False)
    failed = {r.check: r.message for r in report.results if not r.passed}
    said = "your loss is the square of the mean residual, (mean_i r_i)^2; trajectory balance averages the squared residuals"
    for check in ("by hand", "matches the library", "log-probabilities summed over the trajectory"):
        assert said in failed[check], failed
    assert not any("SUM over t" in message for message in failed.values()), failed
