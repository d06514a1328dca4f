"""The graders bite: every check passes on the reference solutions and fails on the untouched stubs.

Also: typical wrong answers are caught, loading problems and hangs become readable FAILs, and
the command line's exit code follows the verdict.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch

from torch import nn

from bitflip_lib import tabular
from bitflip_lib.grading import EXERCISES, GradingFailed, check, cli_main, grade, resolve
from bitflip_lib.grading.ex06_har import START_SEED, library_phi_weights
from bitflip_lib.grading.model import Check, Exercise
from bitflip_lib.grading.notebook import load_graded, notebook_source
from bitflip_lib.grading.runner import run_check, run_exercise
from bitflip_lib.grading.stubs import generate
from bitflip_lib.networks import HAR
from bitflip_lib.replay import Transitions
from bitflip_lib.trainer import evaluate

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
NAMES = sorted(EXERCISES)


@pytest.fixture(scope="module")
def stub_dir(tmp_path_factory) -> Path:
    """Student versions generated afresh from solutions/ (identical to exercises/, see
    test_exercise_generation.py, but never touched by a student working in this clone)."""
    out = tmp_path_factory.mktemp("exercises")
    generate(SOLUTIONS, out)
    return out


@pytest.fixture(scope="module")
def solution_namespaces() -> dict:
    return {name: load_graded(SOLUTIONS / f"{name}.py") for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_every_fast_check_passes_on_the_solution(name, solution_namespaces):
    report = run_exercise(EXERCISES[name], solution_namespaces[name], include_slow=False)
    assert report.passed, str(report)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in NAMES if any(c.slow for c in EXERCISES[n].checks)])
def test_end_to_end_checks_pass_on_the_solution(name, solution_namespaces):
    exercise = EXERCISES[name]
    for c in exercise.checks:
        if c.slow:
            result = run_check(exercise, c, solution_namespaces[name])
            assert result.passed, f"{c.name}: {result.message}"


@pytest.mark.parametrize("name", NAMES)
def test_every_check_fails_on_the_stub(name, stub_dir):
    report = grade(name, stub_dir, include_slow=True)
    assert len(report.results) == len(EXERCISES[name].checks)
    passing = [r.check for r in report.results if r.passed]
    assert not passing, f"checks that pass on an unwritten stub (a grader bug): {passing}"
    for r in report.results:
        assert "NotImplementedError" in r.message, f"{r.check} failed for another reason than the stub: {r.message}"


# --- typical mistakes are caught -------------------------------------------------------------
# Each wrong answer is written as a student would write it: calling the library's own answer
# to the exercise is a failure of its own (tests/test_grader_cheating.py).


def _fails(name: str, **functions) -> set[str]:
    report = run_exercise(EXERCISES[name], functions, include_slow=False)
    return {r.check for r in report.results if not r.passed}


def _messages(name: str, include_slow: bool = False, **functions) -> dict[str, str]:
    report = run_exercise(EXERCISES[name], functions, include_slow=include_slow)
    return {r.check: r.message for r in report.results if not r.passed}


def test_ex01_catches_missing_mask(solution_namespaces):
    ns = solution_namespaces["ex01_env_step"]

    def unmasked_step(state, goal, done, action):
        rows = torch.arange(state.shape[0])
        nxt = state.clone()
        nxt[rows, action] = 1 - nxt[rows, action]
        reward = ns["goal_reward"](nxt, goal)
        return nxt, reward, done | (reward > 0), torch.ones_like(done)

    failed = _fails("ex01_env_step", goal_reward=ns["goal_reward"], env_step=unmasked_step)
    assert "done agents are masked" in failed


def test_ex02_catches_bootstrapping_past_the_goal(solution_namespaces):
    ns = solution_namespaces["ex02_tabular"]

    def no_done(Q, s, g, a, r, s2, done, alpha, gamma):
        td = r + gamma * Q[s2, g].max(1).values - Q[s, g, a]
        Q[s, g, a] += alpha * td
        return td

    failed = _fails("ex02_tabular", q_learning_update=no_done, value_iteration=ns["value_iteration"])
    assert {"update matches the library", "terminal transitions do not bootstrap"} <= failed


def test_ex03_catches_missing_clip_and_one_coin_for_all(solution_namespaces):
    ns = solution_namespaces["ex03_td_target"]

    def unclipped(reward, done, next_q, gamma):
        return reward + gamma * (1.0 - done.float()) * next_q.max(dim=1).values

    failed = _fails("ex03_td_target", td_target=unclipped, epsilon_greedy=ns["epsilon_greedy"])
    assert "targets clipped to [0, 1]" in failed

    def one_coin(q, epsilon, generator=None):
        if torch.rand(1, generator=generator, device=q.device).item() < epsilon:
            return torch.randint(0, q.shape[1], (q.shape[0],), generator=generator, device=q.device)
        return q.argmax(1)

    failed = _fails("ex03_td_target", td_target=ns["td_target"], epsilon_greedy=one_coin)
    assert "exploration rate, per agent" in failed


def test_ex04_catches_swapped_fraction():
    def swapped(target, online, tau):
        with torch.no_grad():
            for p, q in zip(target.parameters(), online.parameters()):
                p.mul_(tau).add_(q, alpha=1.0 - tau)

    failed = _fails("ex04_polyak", polyak_update=swapped)
    assert "matches the library" in failed


def test_ex04_says_the_target_did_not_change_when_a_local_name_is_rebound():
    """Issue 30, item 2: rebinding the loop variable leaves the target as it was; 'updates in place'
    used to PASS it."""
    def rebinds(target, online, tau):
        if not 0.0 <= tau <= 1.0:
            raise ValueError("tau")
        for p, q in zip(target.parameters(), online.parameters()):
            p = (1 - tau) * p + tau * q  # noqa: PLW2901 - the mistake under test

    failed = _messages("ex04_polyak", polyak_update=rebinds)
    assert failed["updates in place"].startswith("with tau = 0.5 every parameter should move halfway to the online "
                                                 "network, but the target did not change: assigning to a loop variable")
    assert "the target did not change" in failed["matches the library"]


def _relabel(episode, k, generator, pick):
    """Relabelled copies whose goal step ``pick(t, length, u)`` chooses (u uniform in [0, 1))."""
    t, b = episode.active.nonzero(as_tuple=True)
    t, b = t.repeat(k), b.repeat(k)
    length = episode.lengths[b]
    u = torch.rand(t.shape, generator=generator, device=t.device)
    goal_step = pick(t, length, u)
    return Transitions.with_goals(episode.states[t, b], episode.states[goal_step + 1, b], episode.actions[t, b],
                                  episode.states[t + 1, b])


@pytest.mark.parametrize("strategy", ["final", "episode"])
def test_ex05_catches_other_strategies(strategy):
    def wrong(episode, k=4, generator=None):
        if strategy == "final":  # the right size, so only the goal choice is wrong
            return _relabel(episode, k, generator, lambda t, length, u: length - 1)
        return _relabel(episode, k, generator, lambda t, length, u: (u * length).long().clamp_max(length - 1))

    failed = _fails("ex05_her_future", her_relabel_future=wrong)
    assert failed & {"goals are future achieved states", "future step is uniform"}


def test_ex05_catches_the_episode_length_instead_of_each_agents_own():
    """Issue 30, item 2: drawing t' up to the batch's T biases the goals of agents that finished early
    (their later states all equal their final one); it used to pass every check."""
    def batch_length(episode, k=4, generator=None):
        steps = episode.actions.shape[0]
        return _relabel(episode, k, generator, lambda t, length, u: torch.minimum(t + (u * (steps - t)).long(),
                                                                                   torch.full_like(t, steps - 1)))

    failed = _messages("ex05_her_future", her_relabel_future=batch_length)
    assert list(failed) == ["future step is uniform"]
    assert failed["future step is uniform"].startswith("for agents that finished early (2 of the episode's 6 steps), the "
                                                       "goal of step 0 came from their last step ")
    assert "draw t' from each agent's own steps t..L_b - 1 (episode.lengths)" in failed["future step is uniform"]


def test_ex05_catches_goal_off_by_one():
    from bitflip_lib.replay import Transitions

    def off_by_one(episode, k=4, generator=None):
        t, b = episode.active.nonzero(as_tuple=True)
        t, b = t.repeat(k), b.repeat(k)
        length = episode.lengths[b]
        future = t + (torch.rand(t.shape, generator=generator) * (length - t)).long()
        return Transitions.with_goals(episode.states[t, b], episode.states[future, b],  # the state *before* step t'
                                      episode.actions[t, b], episode.states[t + 1, b])

    assert "goals are future achieved states" in _fails("ex05_her_future", her_relabel_future=off_by_one)


class SwappedHAR(nn.Module):
    """A HAR whose phi reads (bit differs, distance feature): the exercise's order swapped."""

    def __init__(self, hidden=(64, 64), normalize_distance=True):
        super().__init__()
        layers, width = [], 2
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.phi = nn.Sequential(*layers, nn.Linear(width, 1))
        self.normalize_distance = normalize_distance

    def forward(self, state, goal):
        differs = (state != goal).float()
        distance = differs.sum(1, keepdim=True) / (state.shape[1] if self.normalize_distance else 1)
        return self.phi(torch.stack([differs, distance.expand_as(differs)], -1)).squeeze(-1)


def test_ex06_catches_swapped_inputs():
    assert "same values as the library HAR" in _fails("ex06_har", HARNetwork=SwappedHAR)


def test_ex06_end_to_end_starts_from_a_network_that_is_not_already_optimal():
    """Issue 30, item 2: the end-to-end check started where the untrained network already solved the
    task ("success 1.00 before training"), so it saw no learning. Its starting weights now fail
    in either input order."""
    for swap in (False, True):
        reference, _ = library_phi_weights(START_SEED)
        if swap:
            weights = reference.phi.state_dict()
            first = next(key for key in weights if key.endswith("weight"))
            weights[first] = weights[first][:, [1, 0]]
            reference.phi.load_state_dict(weights)
        assert evaluate(reference, 20, num_agents=512, seed=5)["success_rate"] == 0.0


@pytest.mark.slow
def test_ex06_end_to_end_shows_learning_from_zero(solution_namespaces):
    report = run_exercise(EXERCISES["ex06_har"], solution_namespaces["ex06_har"], include_slow=True)
    end_to_end = report.results[-1]
    assert end_to_end.passed, str(report)
    assert "(success 0.00 before training)" in end_to_end.message


# --- loading, crashes and hangs ---------------------------------------------------------------


def test_loader_runs_only_graded_cells(tmp_path):
    nb = tmp_path / "ex04_polyak.py"
    nb.write_text(
        '# %% tags=["graded"]\nx = 1\n\n# %%\nraise RuntimeError("experiment cells must not run")\n\n'
        '# %% tags=["graded"]\ndef polyak_update(t, o, tau):\n    return x\n'
    )
    ns = load_graded(nb)
    assert ns["polyak_update"](None, None, 0) == 1


def test_newer_ipynb_is_preferred(tmp_path):
    py = tmp_path / "ex04_polyak.py"
    py.write_text('# %% tags=["graded"]\nsource = "py"\n')
    ipynb = tmp_path / "ex04_polyak.ipynb"
    cell = {"cell_type": "code", "metadata": {"tags": ["graded"]}, "source": ['source = "ipynb"\n'], "outputs": [], "execution_count": None}
    ipynb.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert notebook_source(tmp_path, "ex04_polyak") == ipynb
    assert load_graded(ipynb)["source"] == "ipynb"
    time.sleep(0.01)
    py.touch()
    assert notebook_source(tmp_path, "ex04_polyak") == py


def test_broken_or_missing_notebooks_give_readable_fails(tmp_path):
    (tmp_path / "ex04_polyak.py").write_text('# %% tags=["graded"]\nimport torch\n1 / 0\n')
    report = grade("ex04", tmp_path)
    assert not report.passed
    assert all("ZeroDivisionError" in r.message and "graded cell 1" in r.message for r in report.results)
    report = grade("ex01", tmp_path)  # no notebook at all
    assert all("no notebook" in r.message for r in report.results)


def test_crash_and_hang_become_fails():
    exercise = Exercise("ex99_demo", "demo", ("f",), ())
    crash = run_check(exercise, Check("crash", lambda ns: ns["f"]()), {"f": lambda: [][1]})
    assert not crash.passed and "IndexError" in crash.message

    def forever():
        while True:
            pass

    start = time.perf_counter()
    hang = run_check(exercise, Check("hang", lambda ns: ns["f"](), timeout=0.5), {"f": forever})
    assert not hang.passed and "timed out" in hang.message
    assert time.perf_counter() - start < 30
    missing = run_check(exercise, Check("missing", lambda ns: None), {})
    assert not missing.passed and "not defined: f" in missing.message


def test_check_in_a_notebook_raises_only_on_failure(solution_namespaces, capsys):
    ns = solution_namespaces["ex04_polyak"]
    report = check("ex04", ns["polyak_update"], include_slow=False)
    assert report.passed
    assert "PASS" in capsys.readouterr().out
    with pytest.raises(GradingFailed):
        check("ex04_polyak", {"polyak_update": lambda t, o, tau: None}, include_slow=False)
    report = check(4, namespace={"polyak_update": lambda t, o, tau: None}, include_slow=False, raise_on_failure=False)
    assert not report.passed and "FAIL" in str(report)


def test_exercise_names_resolve():
    assert resolve("ex05").name == resolve("5").name == resolve("ex05_her_future.py").name == "ex05_her_future"
    with pytest.raises(ValueError, match="unknown exercise"):
        resolve("ex42")


def test_command_line_exit_codes(tmp_path, stub_dir, capsys):
    assert cli_main(["ex01", "--dir", str(SOLUTIONS), "--fast"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert cli_main(["grade", "ex01", "--dir", str(stub_dir), "--fast", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False and all(r["status"] == "FAIL" for r in data["results"])
    assert cli_main(["ex42"]) == 2
    assert cli_main(["ex01", "--dir", str(tmp_path / "nowhere")]) == 2
    shutil.copy(SOLUTIONS / "ex01_env_step.py", tmp_path / "ex01_env_step.py")
    assert cli_main(["grade", "1", "--dir", str(tmp_path), "--fast"]) == 0


def test_library_references_agree_with_the_tabular_module():
    """The ex02 grader compares against bitflip_lib.tabular; make sure its conventions hold."""
    q, _ = tabular.value_iteration(3, 0.9)
    assert torch.allclose(q, tabular.optimal_q_table(3, 0.9))


# --- issue 27, item 7: usage errors and files that are not notebooks ---------------------------------


def test_a_folder_that_does_not_exist_is_a_usage_error(capsys):
    assert cli_main(["--dir", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --dir '/nonexistent' is not a folder: give the folder that holds your exercise notebooks "
                   "(default: exercises)\n")


@pytest.mark.parametrize("name, content, why", [
    ("ex04_polyak.py", b"\x7fELF\x02\x01\x01\x00\x00binary", "it holds binary data"),
    ("ex04_polyak.py", "polyak = 'caf\xe9'".encode("latin-1"), "it is not UTF-8 text"),
    ("ex04_polyak.ipynb", json.dumps({"cells": "import torch", "nbformat": 4}).encode(), "its 'cells' is not a list of cells"),
    ("ex04_polyak.ipynb", b"[1, 2, 3]", "its 'cells' is not a list of cells"),
    ("ex04_polyak.ipynb", b"{not json", "not valid JSON"),
    ("ex04_polyak.ipynb", json.dumps({"cells": ["x"]}).encode(), "cell 1 is not a cell object"),
    ("ex04_polyak.ipynb", json.dumps({"cells": [{"cell_type": "code", "metadata": {"tags": ["graded"]}, "source": 7}]}).encode(),
     "the source of cell 1 is not text"),
], ids=["binary py", "latin-1 py", "cells a string", "a list", "not json", "cell not an object", "source not text"])
def test_a_file_that_is_not_a_notebook_says_so(tmp_path, name, content, why):
    path = tmp_path / name
    path.write_bytes(content)
    report = grade("ex04", tmp_path, include_slow=False)
    assert not report.passed
    for r in report.results:
        assert r.message.startswith(f"could not load the notebook: {path} is not a notebook: {why}"), r.message
        assert "your code raised" not in r.message


def test_the_report_shows_the_time_the_checks_took():
    """Issue 30, item 2: every report said 'took 0.0 s' while checks took seconds."""
    exercise = Exercise("ex99_demo", "demo", ("f",), (Check("sleeps", lambda ns: ns["f"]()),))
    report = run_exercise(exercise, {"f": lambda: time.sleep(0.6)})
    took = report.seconds["ex99_demo"]
    assert 0.6 <= took < 10 and report.results[0].seconds >= 0.6
    assert f"ex99_demo  (took {took:.1f} s; time budget" in str(report)
